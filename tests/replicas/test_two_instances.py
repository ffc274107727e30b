"""Two instances of every service on the same databases and broker: the consumer groups
share the partitions and apply each event once, one outbox relay per database sends while
the other waits, an idempotency key and a rate limit hold across gateway replicas, a
webhook is delivered once although both gateways run a delivery worker, a reminder fires
once and a matching run runs once although both instances poll for them."""

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from devstack.stack import SERVICES, Stack
from services.gateway.ratelimit import lease_size
from tests.gateway.test_webhooks import Receiver, receiver, subscribe  # noqa: F401
from tests.helpers import eventually
from tests.matchmaking import active_match
from tests.profiles.test_employees import employee

Connect = Callable[[str], Awaitable[asyncpg.Connection]]
Org = tuple[str, dict[str, str]]
RELAY_LOCK = 7_424_012  # shared/outbox.py
SYNCED = 300


@pytest.fixture(scope="module")
def second(stack: Stack, log_dir: Path) -> Iterator[Stack]:
    """The same five services again, on other ports, sharing the first set's databases,
    broker and secrets."""
    twin = Stack.on_free_ports(
        bootstrap_servers=stack.bootstrap_servers,
        embedded_broker=stack.embedded_broker,
        admin_token=stack.admin_token,
        identity_secret=stack.identity_secret,
        log_dir=log_dir / "second",
        database_prefix=stack.database_prefix,
        extra_env=dict(stack.extra_env),
    )
    try:
        twin.start(timeout=120)
        yield twin
    finally:
        twin.stop()


def _handled(metrics: str, service: str) -> float:
    pattern = (
        r'^mentorbus_events_consumed_total\{[^}]*consumer="mentorbus\.' + service
        + r'"[^}]*outcome="handled"[^}]*\} (\S+)$'
    )  # fmt: skip
    return sum(float(m) for m in re.findall(pattern, metrics, flags=re.M))


async def test_two_of_everything_share_the_work_and_do_nothing_twice(
    stack: Stack,
    second: Stack,
    api: httpx.AsyncClient,
    org: Org,
    service_db: Connect,
    receiver: Receiver,  # noqa: F811
) -> None:
    org_id, key = org
    dbs = {name: await service_db(name) for name in SERVICES}
    other = httpx.AsyncClient(base_url=second.url(), timeout=30)
    try:
        # One relay per database holds the lock and sends; the other instance's waits.
        seen: dict[str, tuple[int, int]] = {}

        async def one_relay_each() -> bool:
            for name, conn in dbs.items():
                granted, waiting = await conn.fetchrow(
                    "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted)"
                    " FROM pg_locks WHERE locktype = 'advisory' AND objid = $1"
                    " AND database = (SELECT oid FROM pg_database"
                    "                 WHERE datname = current_database())",
                    RELAY_LOCK,
                )
                seen[name] = (granted, waiting)
            return all(counts == (1, 1) for counts in seen.values())

        try:
            await eventually(one_relay_each, timeout=30)
        except AssertionError:
            raise AssertionError(f"relay locks (granted, waiting) per database: {seen}") from None

        # An idempotency key used through one gateway is replayed by the other.
        headers = {**key, "Idempotency-Key": uuid.uuid4().hex}
        body = {"name": "Twin cohort", "format": "one_to_one"}
        first = await api.post("/v1/programs", json=body, headers=headers)
        again = await other.post("/v1/programs", json=body, headers=headers)
        assert first.status_code == again.status_code == 201, again.text
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        listed = (await other.get("/v1/programs", headers=key)).json()["items"]
        assert [p["id"] for p in listed] == [first.json()["id"]]

        # The rate limit counts requests through either gateway against one budget.
        assert await _one_budget_across(api, other, key), "each gateway counted on its own"

        # A webhook, then people synced through the second gateway: both matching
        # instances handle some of the events (the group split the partitions), every
        # person is projected once, and the webhook fires once for the one it watches.
        hook = await subscribe(api, key, receiver.url("twin"), ["mentorbus.person.upserted.v1"])
        before = [_handled((await httpx.AsyncClient().get(f"{s.url('matching')}/metrics")).text,
                           "matching") for s in (stack, second)]  # fmt: skip
        records = [
            {"external_id": f"T-{i:04}", **employee(email=f"t{i}@example.com")}
            for i in range(SYNCED)
        ]
        synced = await other.post("/v1/employees/bulk", json={"employees": records}, headers=key)
        assert synced.status_code == 200, synced.text

        async def all_projected() -> bool:
            count = await dbs["matching"].fetchval(
                "SELECT count(*) FROM person WHERE org_id = $1", uuid.UUID(org_id)
            )
            return bool(count == SYNCED)

        await eventually(all_projected, timeout=60, interval=0.5)
        after = [_handled((await httpx.AsyncClient().get(f"{s.url('matching')}/metrics")).text,
                          "matching") for s in (stack, second)]  # fmt: skip
        shares = [a - b for a, b in zip(after, before, strict=True)]
        assert all(share > 0 for share in shares), f"one instance did all the work: {shares}"
        assert sum(shares) == SYNCED, f"handled {sum(shares)} events for {SYNCED} people"

        await eventually(lambda: _got(receiver, SYNCED), timeout=60, interval=0.5)
        await asyncio.sleep(2)  # time for a second delivery, if there were to be one
        ids = [r.event["id"] for r in receiver.got("twin")]
        assert len(ids) == len(set(ids)) == SYNCED, "a webhook was delivered twice"
        assert hook["id"]

        # A reminder due while both sessions instances poll for due reminders goes out once.
        match = await active_match(api, key, "R-M", "R-E")
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=60, seconds=4)
        booked = await other.post(
            "/v1/sessions",
            json={"match_id": match.match_id, "starts_at": starts.isoformat(),
                  "duration_minutes": 30},
            headers=key,
        )  # fmt: skip
        assert booked.status_code == 201, booked.text
        org_uuid = uuid.UUID(org_id)

        async def reminded() -> bool:
            sent = await dbs["sessions"].fetchval(
                "SELECT count(*) FROM reminder WHERE org_id = $1 AND sent_at IS NOT NULL", org_uuid
            )
            return bool(sent)

        await eventually(reminded, timeout=30, interval=0.5)
        await asyncio.sleep(3)  # both pollers had their turns
        events = await dbs["sessions"].fetchval(
            "SELECT count(*) FROM outbox_message"
            " WHERE payload->>'type' = 'mentorbus.session.reminder_due.v1'"
            " AND payload->>'orgid' = $1",
            org_id,
        )
        assert events == 1, f"{events} reminders for one due reminder"

        # A matching run queued while both matching instances' workers look for runs: one
        # of them claims it, once.
        queued = await other.post(
            f"/v1/programs/{match.program_id}/matching-runs", json={}, headers=key
        )
        assert queued.status_code == 202, queued.text
        run_id = queued.json()["id"]

        async def finished() -> bool:
            run = await api.get(f"/v1/matching-runs/{run_id}", headers=key)
            return run.json()["status"] in ("succeeded", "failed")

        await eventually(finished, timeout=60, interval=0.5)
        await asyncio.sleep(3)  # the other worker's polls came and went
        run = await dbs["matching"].fetchrow(
            "SELECT status, attempts FROM matching_run WHERE id = $1", uuid.UUID(run_id)
        )
        assert (run["status"], run["attempts"]) == ("succeeded", 1), dict(run)
    finally:
        await other.aclose()
        for conn in dbs.values():
            await conn.close()


async def _got(receiver: Receiver, count: int) -> bool:  # noqa: F811
    return len(receiver.got("twin")) >= count


def _remaining(response: httpx.Response) -> tuple[int, int]:
    """(requests left, seconds to the window's end) of the first RateLimit item."""
    first = response.headers["RateLimit"].split(",")[0]
    fields = dict(part.split("=") for part in first.split(";")[1:])
    return int(fields["r"]), int(fields["t"])


async def _one_budget_across(
    one: httpx.AsyncClient, two: httpx.AsyncClient, key: dict[str, str]
) -> bool:
    for _ in range(3):  # a window may end between two requests: then try again
        answers = [await client.get("/v1/programs", headers=key) for client in (one, two, one)]
        assert all(a.status_code == 200 for a in answers)
        left = [_remaining(a) for a in answers]
        if left[0][1] < left[2][1]:
            continue  # a new window began in between
        first, other, again = (r for r, _ in left)
        policy = answers[0].headers["RateLimit-Policy"].split(",")[0]
        limit = int(dict(part.split("=") for part in policy.split(";")[1:])["q"])
        if lease_size(limit) == 1:  # counted exactly: one request after another
            return [first, other, again] == [first, first - 1, first - 2]
        # The replicas reserve leases of the one shared counter (README, "Idempotency and
        # rate limits"): each counts its own requests one by one, and the second's view
        # takes in the lease the first reserved. One counting on its own would show
        # first - 1 there (its requests so far: as many as the first's, plus this one).
        return again == first - 1 and other < first - 1
    return False
