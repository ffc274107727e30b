"""The broker stopped for 30 s while employees sync, a match is made and a session booked:
requests keep working (each service writes its own database and its outbox), and once the
broker is back every projection equals its source of truth, with nothing applied twice.

A stack of its own, on a broker of its own (Tansu on a local S3, killed and restarted on
the same log); the event volume stays small so the test stays bounded."""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.broker import Broker, S3Server
from devstack.stack import Stack
from shared.db import asyncpg_dsn, drop_database
from tests.conftest import RUN_ID
from tests.helpers import create_org, eventually
from tests.matchmaking import active_match, enrol, put_employee
from tests.profiles.test_employees import employee

OUTAGE_SECONDS = 30
SYNCED = 100


@pytest.fixture
async def own_stack(log_dir: Path) -> AsyncIterator[tuple[Stack, S3Server, list[Broker]]]:
    """Five services on a broker only this test stops (a restart appends to the list)."""
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
        for service in stack.ports:
            await drop_database(stack.database_url(service))


async def _ids(conn: asyncpg.Connection, query: str, org_id: str) -> set[Any]:
    rows = await conn.fetch(query, uuid.UUID(org_id))
    assert len(rows) == len({tuple(r) for r in rows}), "a row appears twice"
    return {tuple(r) for r in rows}


async def test_broker_down_for_30s_loses_and_doubles_nothing(
    own_stack: tuple[Stack, S3Server, list[Broker]],
) -> None:
    stack, s3, brokers = own_stack
    broker = brokers[0]
    db: dict[str, asyncpg.Connection] = {
        name: await asyncpg.connect(asyncpg_dsn(stack.database_url(name)))
        for name in ("profiles", "matching", "sessions", "feedback")
    }
    api = httpx.AsyncClient(base_url=stack.url(), timeout=30)
    try:
        org_id, key = await create_org(api, {"Authorization": f"Bearer {stack.admin_token}"})
        first = await active_match(api, key, "BD-M", "BD-E1")
        await put_employee(api, key, "BD-E2")
        second_mentee = await enrol(api, key, first.program_id, "BD-E2", "mentee")
        # What the outage-time requests need is projected before the broker goes away.
        await eventually(
            lambda: db["sessions"].fetchval(
                "SELECT count(*) FROM match WHERE id = $1", uuid.UUID(first.match_id)
            ),
            timeout=30,
        )
        await eventually(
            lambda: db["matching"].fetchval(
                "SELECT count(*) FROM enrollment WHERE id = $1", uuid.UUID(second_mentee)
            ),
            timeout=30,
        )

        broker.kill()
        down_since = asyncio.get_running_loop().time()
        records = [
            {"external_id": f"BD-{i:04}", **employee(email=f"bd{i}@example.com")}
            for i in range(SYNCED)
        ]
        synced = await api.post("/v1/employees/bulk", json={"employees": records}, headers=key)
        assert synced.status_code == 200, synced.text
        made = await api.post(
            "/v1/matches",
            json={"program_id": first.program_id, "mentee_enrollment_id": second_mentee,
                  "mentor_enrollment_id": first.mentor_enrollment_id},
            headers=key,
        )  # fmt: skip
        assert made.status_code == 201, made.text
        accepted = await api.post(f"/v1/matches/{made.json()['id']}/accept", headers=key)
        assert accepted.status_code == 200, accepted.text
        booked = await api.post(
            "/v1/sessions",
            json={"match_id": first.match_id, "starts_at": "2027-05-03T10:00:00Z",
                  "duration_minutes": 45, "title": "During the outage"},
            headers=key,
        )  # fmt: skip
        assert booked.status_code == 201, booked.text
        assert await db["profiles"].fetchval(
            "SELECT count(*) FROM outbox_message WHERE published_at IS NULL"
        ), "the events wait in the outbox"
        elapsed = asyncio.get_running_loop().time() - down_since
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - elapsed))
        brokers.append(Broker(stack.log_dir, port=broker.port, s3=s3))
        brokers[-1].start()

        people = "SELECT external_id, version FROM person WHERE org_id = $1"
        matches = "SELECT id, status FROM match WHERE org_id = $1"
        sessions = "SELECT id FROM session WHERE org_id = $1"

        async def caught_up() -> bool:
            source_people = await _ids(db["profiles"], people, org_id)
            source_matches = await _ids(db["matching"], matches, org_id)
            source_sessions = await _ids(db["sessions"], sessions, org_id)
            return (
                len(source_people) == SYNCED + 3
                and await _ids(db["matching"], people, org_id) == source_people
                and await _ids(db["sessions"], people, org_id) == source_people
                and await _ids(db["feedback"], people, org_id) == source_people
                and await _ids(db["sessions"], matches, org_id) == source_matches
                and await _ids(db["feedback"], matches, org_id) == source_matches
                and await _ids(db["feedback"], sessions, org_id) == source_sessions
                and len(source_matches) == 2
                and len(source_sessions) == 1
            )

        await eventually(caught_up, timeout=90, interval=1.0)
        for name, conn in db.items():
            unpublished = await conn.fetchval(
                "SELECT count(*) FROM outbox_message WHERE published_at IS NULL"
            )
            assert unpublished == 0, f"{name} still holds {unpublished} events"
    finally:
        await api.aclose()
        for conn in db.values():
            await conn.close()
