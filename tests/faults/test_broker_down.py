"""The broker stopped for 30 s while 10,000 employees sync through the bulk API and matches,
sessions and check-ins are made: requests keep working (each service writes its own
database and its outbox), and once the broker is back every projection equals its source
of truth, and every event took effect exactly once in each consumer that projects it.

A stack of its own, on a broker of its own (Tansu on a local S3, killed and restarted on
the same log)."""

import asyncio
import functools
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from devstack.broker import Broker, S3Server
from devstack.postgres import PostgresCluster
from devstack.stack import Stack
from shared.db import asyncpg_dsn
from tests.conftest import RUN_ID
from tests.faults.support import sync_new_employees
from tests.faults.truth import Databases, assert_handled_exactly_once, caught_up
from tests.helpers import create_org, eventually
from tests.matchmaking import active_match, enrol, put_employee

OUTAGE_SECONDS = 30
SYNCED = 10_000
PER_REQUEST = 1_000  # the bulk API's maximum
MENTEES = 4  # matched while the broker is down (the mentor takes 5)
SESSIONS = 5
CHECKINS = 5


@pytest.fixture
async def own_stack(
    log_dir: Path, private_postgres: PostgresCluster
) -> AsyncIterator[tuple[Stack, S3Server, list[Broker]]]:
    """Five services on a broker only this test stops (a restart appends to the list), and
    on a PostgreSQL server of their own: the machine's may have no connections to spare."""
    logs = log_dir / f"broker-down-{uuid.uuid4().hex[:6]}"
    logs.mkdir(parents=True)
    s3 = S3Server(logs)
    s3.start()
    broker = Broker(logs, s3=s3)
    broker.start()
    stack = Stack.on_free_ports(
        bootstrap_servers=broker.bootstrap_servers,
        admin_token=secrets.token_urlsafe(32),
        log_dir=logs,
        database_prefix=f"mbtest_{RUN_ID}_bd",
        postgres_url=private_postgres.url,
        # Tansu on S3 writes every heartbeat, and every committed offset of every partition
        # of a group's topics, as an object to moto; on a loaded 2-core machine those writes
        # starved the 10,000 events' own (catch-up: ~12 s with one partition per topic,
        # ~36 s with three, in one run each). Per-key order, the inbox and the relay are
        # the same on one partition; tests/replicas covers groups sharing partitions.
        extra_env={
            "MENTORBUS_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "MENTORBUS_KAFKA_TOPIC_PARTITIONS": "1",
        },
    )
    brokers = [broker]
    try:
        await asyncio.to_thread(stack.start, 120)
        yield stack, s3, brokers
    finally:
        await asyncio.to_thread(stack.stop)
        for each in brokers:
            each.stop()
        s3.stop()


async def _sync_all(api: httpx.AsyncClient, key: dict[str, str]) -> None:
    """The HRIS sync: two requests at a time, as an integration with some patience would."""
    starts = iter(range(0, SYNCED, PER_REQUEST))

    async def worker() -> None:
        for start in starts:
            await sync_new_employees(api, key, "BD", start, PER_REQUEST)

    await asyncio.gather(worker(), worker())


async def _match(api: httpx.AsyncClient, key: dict[str, str], body: dict[str, str]) -> str:
    made = await api.post("/v1/matches", json=body, headers=key)
    assert made.status_code == 201, made.text
    accepted = await api.post(f"/v1/matches/{made.json()['id']}/accept", headers=key)
    assert accepted.status_code == 200, accepted.text
    return str(made.json()["id"])


async def _book(api: httpx.AsyncClient, key: dict[str, str], match_id: str, hour: int) -> None:
    booked = await api.post(
        "/v1/sessions",
        json={"match_id": match_id, "starts_at": f"2027-05-03T{hour:02}:00:00Z",
              "duration_minutes": 45, "title": "During the outage"},
        headers=key,
    )  # fmt: skip
    assert booked.status_code == 201, booked.text


async def _check_in(
    api: httpx.AsyncClient, key: dict[str, str], match_id: str, rating: int
) -> None:
    checked = await api.post(
        f"/v1/matches/{match_id}/check-ins",
        json={"employee_external_id": "BD-E1", "rating": rating},
        headers=key,
    )
    assert checked.status_code == 201, checked.text


async def test_broker_down_for_30s_while_10000_employees_sync_loses_and_doubles_nothing(
    own_stack: tuple[Stack, S3Server, list[Broker]],
) -> None:
    stack, s3, brokers = own_stack
    broker = brokers[0]
    db: Databases = {
        name: await asyncpg.connect(asyncpg_dsn(stack.database_url(name)))
        for name in ("profiles", "matching", "sessions", "feedback")
    }
    api = httpx.AsyncClient(base_url=stack.url(), timeout=30)
    clock = asyncio.get_running_loop().time
    try:
        org_id, key = await create_org(api, {"Authorization": f"Bearer {stack.admin_token}"})
        first = await active_match(api, key, "BD-M", "BD-E1")
        mentees = []
        for n in range(MENTEES):
            await put_employee(api, key, f"BD-MENTEE-{n}")
            mentees.append(await enrol(api, key, first.program_id, f"BD-MENTEE-{n}", "mentee"))
        # What the outage-time requests need is projected before the broker goes away.
        for name in ("sessions", "feedback"):
            active = "SELECT count(*) FROM match WHERE id = $1 AND status = 'active'"
            await eventually(
                functools.partial(db[name].fetchval, active, uuid.UUID(first.match_id)),
                timeout=30,
            )
        await eventually(
            lambda: db["matching"].fetchval(
                "SELECT count(*) = $2 FROM enrollment WHERE id = ANY($1::uuid[])",
                [uuid.UUID(m) for m in mentees],
                MENTEES,
            ),
            timeout=30,
        )
        await eventually(
            lambda: db["matching"].fetchval(
                "SELECT count(*) = $2 FROM person WHERE external_id LIKE 'BD-MENTEE-%'"
                " AND org_id = $1",
                uuid.UUID(org_id),
                MENTEES,
            ),
            timeout=30,
        )

        broker.kill()
        down_since = clock()
        await asyncio.gather(
            _sync_all(api, key),
            *(
                _match(api, key, {"program_id": first.program_id, "mentee_enrollment_id": m,
                                  "mentor_enrollment_id": first.mentor_enrollment_id})
                for m in mentees
            ),
            *(_book(api, key, first.match_id, 8 + hour) for hour in range(SESSIONS)),
            *(_check_in(api, key, first.match_id, 1 + n) for n in range(CHECKINS)),
        )  # fmt: skip
        written = clock() - down_since
        assert await db["profiles"].fetchval(
            "SELECT count(*) FROM outbox_message WHERE published_at IS NULL"
        ), "the events wait in the outbox"
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - written))
        brokers.append(Broker(stack.log_dir, port=broker.port, s3=s3))
        brokers[-1].start()

        done = await caught_up(db, org_id, timeout=90)
        print(
            f"\nwhile the broker was down: {SYNCED:,} employees synced, {MENTEES} matches,"
            f" {SESSIONS} sessions, {CHECKINS} check-ins written in {written:.1f}s;"
            f" caught up after the broker was back (s): "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(done.items()))
        )
        people = await db["profiles"].fetchval(
            "SELECT count(*) FROM person WHERE org_id = $1", uuid.UUID(org_id)
        )
        assert people == SYNCED + 2 + MENTEES
        counts = {
            table: await db[service].fetchval(
                f"SELECT count(*) FROM {table} WHERE org_id = $1", uuid.UUID(org_id)
            )
            for service, table in (
                ("matching", "match"),
                ("sessions", "session"),
                ("feedback", "checkin"),
            )
        }
        assert counts == {"match": 1 + MENTEES, "session": SESSIONS, "checkin": CHECKINS}
        await assert_handled_exactly_once(db)
    finally:
        await api.aclose()
        for conn in db.values():
            await conn.close()
