"""PostgreSQL itself stopped (`pg_ctl stop -m fast`) and started again under load: while it
is down every request answers 503 problem+json at once (never a 500, never a hang), and
once it is back everything recovers by itself, no service restarted: requests succeed,
the relays send what waited, every projection equals its source of truth and nothing took
effect twice.

The machine's shared server keeps running: the test starts a PostgreSQL cluster of its own
(devstack.postgres), and a broker of its own (so no other stack's consumer groups share
its events)."""

import asyncio
import contextlib
import secrets
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from devstack.broker import Broker
from devstack.postgres import PostgresCluster
from devstack.stack import SERVICES, UNLIMITED_RATES_ENV, Stack
from shared.consumer import EventConsumer
from shared.db import asyncpg_dsn, make_engine, make_sessionmaker, utcnow
from shared.events import CloudEvent, Topic, WebhookDisabledV1, make_event
from shared.kafka import EventPublisher, OutgoingRecord
from tests.conftest import RUN_ID, ExternalBroker
from tests.faults.truth import Databases, assert_handled_exactly_once, caught_up
from tests.helpers import create_org, eventually, kafka_settings
from tests.matchmaking import active_match
from tests.profiles.test_employees import employee

WARM_SECONDS = 4.0
DOWN_SECONDS = 5.0
# While PostgreSQL is down a request must be answered within this.
FAIL_FAST_SECONDS = 3.0
# After it is back, every kind of request must succeed again within this.
RECOVERY_SECONDS = 20.0
BULK_RECORDS = 200


@pytest.fixture
async def own_cluster(
    log_dir: Path, private_postgres: PostgresCluster
) -> AsyncIterator[tuple[Stack, PostgresCluster]]:
    """Five services on a PostgreSQL server and a broker only this test uses."""
    logs = log_dir / f"postgres-restart-{uuid.uuid4().hex[:6]}"
    logs.mkdir(parents=True)
    broker = Broker(logs)
    stack = Stack.on_free_ports(
        bootstrap_servers=broker.bootstrap_servers,
        admin_token=secrets.token_urlsafe(32),
        log_dir=logs,
        database_prefix=f"mbtest_{RUN_ID}_pg",
        postgres_url=private_postgres.url,
        extra_env=UNLIMITED_RATES_ENV,
    )
    try:
        broker.start()
        await asyncio.to_thread(stack.start, 120)
        yield stack, private_postgres
    finally:
        await asyncio.to_thread(stack.stop)
        broker.stop()


@dataclass(frozen=True)
class Outcome:
    """One request of the load: when it started (monotonic), how long it took, its answer
    (0: no answer in time)."""

    kind: str
    started: float
    elapsed: float
    status: int
    problem_json: bool


@dataclass
class Load:
    """Clients of the gateway doing what an HRIS sync and people using the product do."""

    api: httpx.AsyncClient
    key: dict[str, str]
    match_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Session start times booked (201) or found booked (409: an earlier attempt committed).
    slots: list[str] = field(default_factory=list)

    async def call(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        """Send one request and record its outcome; None if no answer came in time."""
        started = time.monotonic()
        answer: httpx.Response | None = None
        with contextlib.suppress(httpx.TransportError):  # no answer in time: recorded as 0
            answer = await self.api.request(method, url, headers=self.key, **kwargs)
        status = answer.status_code if answer is not None else 0
        problem = answer is not None and answer.headers.get("content-type", "").startswith(
            "application/problem+json"
        )
        self.outcomes.append(Outcome(kind, started, time.monotonic() - started, status, problem))
        if status >= 500 or status == 0:
            await asyncio.sleep(0.2)  # as a client honouring Retry-After would, briefly
        return answer

    async def bulk_sync(self) -> None:
        """New employees, a batch at a time."""
        round_ = 0
        while not self.stopping.is_set():
            records = [
                {
                    "external_id": f"PG-{round_:03}-{i:03}",
                    **employee(email=f"pg{round_}.{i}@example.com"),
                }
                for i in range(BULK_RECORDS)
            ]
            await self.call("bulk", "POST", "/v1/employees/bulk", json={"employees": records})
            round_ += 1

    async def read_write(self, worker: int) -> None:
        """Updates of a few employees (a new version each), each read back."""
        i = 0
        while not self.stopping.is_set():
            path = f"/v1/employees/PG-RW-{worker}-{i % 5}"
            await self.call("put", "PUT", path, json=employee(title=f"Title {i}"))
            await self.call("get", "GET", path)
            i += 1

    async def book(self) -> None:
        """Sessions one hour after another; a slot whose answer was a 5xx is tried again
        (a booking that committed but whose answer was lost is then a 409 conflict)."""
        hour = 0
        while not self.stopping.is_set():
            starts_at = f"2027-06-{1 + hour // 24:02}T{hour % 24:02}:00:00Z"
            answer = await self.call(
                "book",
                "POST",
                "/v1/sessions",
                json={"match_id": self.match_id, "starts_at": starts_at,
                      "duration_minutes": 30, "title": f"Slot {hour}"},
            )  # fmt: skip
            if answer is None or answer.status_code >= 500:
                continue
            # A 409 must name the session booked there (an earlier attempt committed).
            assert answer.status_code == 201 or answer.json().get("conflicts"), answer.text
            self.slots.append(starts_at)
            hour += 1

    def during(self, start: float, end: float) -> list[Outcome]:
        """Outcomes of requests that started between `start` and `end`."""
        return [o for o in self.outcomes if start <= o.started < end]


SERVICE_DATABASES = ("profiles", "matching", "sessions", "feedback")


async def _connect(stack: Stack) -> Databases:
    return {
        name: await asyncpg.connect(asyncpg_dsn(stack.database_url(name)))
        for name in SERVICE_DATABASES
    }


async def _ready(api: httpx.AsyncClient, stack: Stack) -> dict[str, bool]:
    """Whether each service's /readyz says ready (a 503 there is a problem+json)."""
    answers = [await api.get(f"{stack.url(name)}/readyz", timeout=5) for name in SERVICES]
    for answer in answers:
        assert answer.status_code in (200, 503), answer.text
    return {name: a.status_code == 200 for name, a in zip(SERVICES, answers, strict=True)}


async def _all_ready(api: httpx.AsyncClient, stack: Stack) -> bool:
    return all((await _ready(api, stack)).values())


async def test_postgres_restarted_under_load_recovers_by_itself(
    own_cluster: tuple[Stack, PostgresCluster],
) -> None:
    stack, cluster = own_cluster
    kinds = {"bulk", "put", "get", "book"}
    pids = {name: p.process.pid for name, p in stack.processes.items() if p.process}
    async with httpx.AsyncClient(base_url=stack.url(), timeout=15) as api:
        org_id, key = await create_org(api, {"Authorization": f"Bearer {stack.admin_token}"})
        match = await active_match(api, key, "PG-M", "PG-E")
        sessions = await asyncpg.connect(asyncpg_dsn(stack.database_url("sessions")))
        try:
            # Bookings need the active match projected into sessions.
            await eventually(
                lambda: sessions.fetchval(
                    "SELECT count(*) FROM match WHERE id = $1 AND status = 'active'",
                    uuid.UUID(match.match_id),
                ),
                timeout=30,
            )
        finally:
            await sessions.close()
        load = Load(api, key, match.match_id)
        workers = [
            asyncio.create_task(work)
            for work in (load.bulk_sync(), load.read_write(0), load.read_write(1), load.book())
        ]
        try:
            await asyncio.sleep(WARM_SECONDS)
            stopping_at = time.monotonic()
            await asyncio.to_thread(cluster.stop, "fast")
            down_at = time.monotonic()
            await asyncio.sleep(DOWN_SECONDS / 2)
            # Not ready while the database is away, so a load balancer stops sending.
            assert await _ready(api, stack) == {name: False for name in SERVICES}
            await asyncio.sleep(DOWN_SECONDS / 2)
            restart_at = time.monotonic()
            await asyncio.to_thread(cluster.start)
            up_at = time.monotonic()

            async def served_again() -> bool:
                now = time.monotonic()
                return {o.kind for o in load.during(up_at, now) if o.status < 300} == kinds

            await eventually(served_again, timeout=RECOVERY_SECONDS, interval=0.2)
            recovered_at = time.monotonic()
            await eventually(lambda: _all_ready(api, stack), timeout=RECOVERY_SECONDS, interval=0.2)
        finally:
            load.stopping.set()
            await asyncio.gather(*workers)

    # Nothing was restarted: the same processes served before, during and after.
    assert {n: p.process.pid for n, p in stack.processes.items() if p.process} == pids
    assert all(p.process and p.process.poll() is None for p in stack.processes.values())
    served_before = {o.kind for o in load.during(0, stopping_at) if o.status < 300}
    assert served_before == kinds, f"only {served_before} succeeded before the stop"
    outage = load.during(down_at, restart_at)
    assert {o.kind for o in outage} == kinds, "every kind of request met the outage"
    for o in outage:
        assert o.status == 503 and o.problem_json, o
        assert o.elapsed < FAIL_FAST_SECONDS, f"{o.kind} took {o.elapsed:.1f}s to fail"
    for o in load.outcomes:  # before, across the stop and the start, and after
        assert o.status != 0, f"{o.kind} got no answer in {o.elapsed:.1f}s"
        assert o.status < 500 or o.status == 503, o
    served_after = {
        kind: min(o.started + o.elapsed for o in load.during(up_at, recovered_at)
                  if o.kind == kind and o.status < 300) - up_at
        for kind in kinds
    }  # fmt: skip
    served = sorted(o.elapsed for o in load.during(0, stopping_at) if o.status < 300)
    print(
        f"\n{len(load.outcomes)} requests, {len(outage)} while PostgreSQL was down (503 in"
        f" {statistics.median(o.elapsed for o in outage):.3f}s median,"
        f" {max(o.elapsed for o in outage):.3f}s at most; before the stop a success took"
        f" {statistics.median(served):.3f}s median); served again after (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in sorted(served_after.items()))
    )

    db = await _connect(stack)
    try:
        done = await caught_up(db, org_id, timeout=60)
        print(
            "caught up after the load (s): "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(done.items()))
        )
        await assert_handled_exactly_once(db)
        # Each slot booked once: a retried booking never made a second session.
        starts = await db["sessions"].fetch(
            "SELECT starts_at FROM session WHERE org_id = $1", uuid.UUID(org_id)
        )
        assert len(starts) == len(set(load.slots)) == len({r["starts_at"] for r in starts})
    finally:
        for conn in db.values():
            await conn.close()


async def test_a_consumer_waits_out_a_database_starting_up_instead_of_dead_lettering(
    scratch_db: str, broker: Broker | ExternalBroker
) -> None:
    """Between "connection refused" and serving again, a restarting server answers "the
    database system is starting up" (57P03, and "shutting down" on its way down): an
    unavailable database, however many times in a row, never costs the event its place."""
    settings = kafka_settings(broker.bootstrap_servers, consumer_max_attempts=2)
    engine = make_engine(scratch_db)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE effect (event_id uuid PRIMARY KEY)"))
    # A topic other tests leave nearly empty (the group reads it from the beginning),
    # and only this test's event counts: others that are there are handled as no-ops.
    event = make_event(
        WebhookDisabledV1(webhook_id=uuid.uuid4(), url="https://example.com/hook",
                          reason="test", consecutive_failures=4, disabled_at=utcnow()),
        source="t",
        orgid=uuid.uuid4(),
    )  # fmt: skip
    refusals = 0

    async def handler(session: AsyncSession, envelope: CloudEvent, _: object) -> None:
        nonlocal refusals
        if envelope.id != event.id:
            return
        if refusals < 5:  # more than consumer_max_attempts
            refusals += 1
            starting = asyncpg.exceptions.CannotConnectNowError(
                "the database system is starting up"
            )
            raise DBAPIError("SELECT 1", None, starting)
        await session.execute(text("INSERT INTO effect VALUES (:id)"), {"id": envelope.id})

    group = f"test-{uuid.uuid4().hex[:8]}"
    publisher = EventPublisher(settings)
    consumer = EventConsumer(
        settings=settings, group_id=group, handlers={WebhookDisabledV1: handler},
        sessionmaker=make_sessionmaker(engine), dead_letters=publisher,
    )  # fmt: skip
    try:
        await asyncio.to_thread(
            publisher.publish_batch,
            [OutgoingRecord(Topic.WEBHOOKS, "k", event.model_dump(mode="json"))],
        )
        consumer.start()
        async with engine.connect() as conn:
            found = await eventually(
                lambda: _scalar(conn, "SELECT count(*) FROM effect"), timeout=20, interval=0.2
            )
        assert found == 1 and refusals == 5
        dead = REGISTRY.get_sample_value(
            "mentorbus_events_consumed_total",
            {"service": settings.service_name, "consumer": group, "outcome": "dead_lettered"},
        )
        assert not dead, "an event was dead-lettered while the database was starting up"
    finally:
        await consumer.stop()
        publisher.close()
        await engine.dispose()


async def _scalar(conn: AsyncConnection, query: str) -> Any:
    return (await conn.execute(text(query))).scalar()
