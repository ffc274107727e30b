"""Reminders: `session.reminder_due` once per occurrence and lead time, from durable rows
claimed with SKIP LOCKED, with the running service and two more workers racing."""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from devstack.broker import Broker
from devstack.stack import Stack
from services.sessions.reminders import send_due
from shared.db import make_engine, make_sessionmaker
from shared.events import Topic
from tests.helpers import eventually, kafka_settings, read_topic
from tests.matchmaking import active_match
from tests.sessions.support import iso, soon

DUE = "mentorbus.session.reminder_due.v1"


async def _reminder_events(db: asyncpg.Connection, session_id: str) -> list[int]:
    rows = await db.fetch(
        "SELECT (payload->'data'->>'lead_minutes')::int AS lead FROM outbox_message"
        " WHERE event_type = $1 AND key = $2 ORDER BY lead",
        DUE,
        session_id,
    )
    return [r["lead"] for r in rows]


async def test_reminder_due_once_at_the_lead_time(
    api: httpx.AsyncClient,
    org: tuple[str, dict[str, str]],
    broker: Broker,
    service_db: Callable[[str], Awaitable[asyncpg.Connection]],
) -> None:
    _, key = org
    pair = await active_match(api, key, "T-M", "T-E")
    # Default leads are 1440 and 60 minutes: the 60-minute reminder is due in 5 s, the
    # 24-hour one is already past when booked and is not sent at all.
    starts_at = soon(60) + timedelta(seconds=5)
    booked = await api.post(
        "/v1/sessions",
        json={"match_id": pair.match_id, "starts_at": iso(starts_at), "duration_minutes": 30},
        headers=key,
    )
    assert booked.status_code == 201, booked.text
    session_id = booked.json()["id"]

    def reminded(records: list[Any]) -> bool:
        return any(DUE in r.value.decode() and session_id in r.value.decode() for r in records)

    records = await read_topic(kafka_settings(broker.bootstrap_servers), Topic.SESSIONS, reminded)
    event = next(r for r in records if reminded([r]))
    assert json.loads(event.value)["data"]["lead_minutes"] == 60
    await asyncio.sleep(2)  # the worker polls every second: a second send would show by now
    db = await service_db("sessions")
    try:
        assert await _reminder_events(db, session_id) == [60]
    finally:
        await db.close()


async def test_racing_workers_send_each_reminder_once(
    api: httpx.AsyncClient,
    org: tuple[str, dict[str, str]],
    stack: Stack,
    service_db: Callable[[str], Awaitable[asyncpg.Connection]],
) -> None:
    _, key = org
    pair = await active_match(api, key, "W-M", "W-E")
    booked = await api.post(
        "/v1/sessions",
        json={
            "match_id": pair.match_id,
            "starts_at": iso(soon(30 * 24 * 60)),
            "duration_minutes": 30,
        },
        headers=key,
    )
    assert booked.status_code == 201, booked.text
    session_id = booked.json()["id"]
    db = await service_db("sessions")
    engine = make_engine(stack.database_url("sessions"))
    sessionmaker = make_sessionmaker(engine)
    try:
        occurrence = await db.fetchval(
            "SELECT id FROM occurrence WHERE session_id = $1", uuid.UUID(session_id)
        )
        leads = list(range(2000, 2200))
        await db.executemany(
            "INSERT INTO reminder (occurrence_id, org_id, lead_minutes, due_at)"
            " SELECT id, org_id, $2, now() - interval '1 second' FROM occurrence WHERE id = $1",
            [(occurrence, lead) for lead in leads],
        )

        async def replica() -> None:
            # Another replica's loop, in small batches so the three of them interleave.
            while True:
                async with sessionmaker.begin() as session:
                    if not await send_due(session, 7):
                        return

        await asyncio.gather(replica(), replica())

        async def all_sent() -> bool:
            left = await db.fetchval(
                "SELECT count(*) FROM reminder WHERE occurrence_id = $1 AND sent_at IS NULL"
                " AND lead_minutes >= 2000",
                occurrence,
            )
            return left == 0

        await eventually(all_sent)
        sent = [lead for lead in await _reminder_events(db, session_id) if lead >= 2000]
        assert sent == leads  # each exactly once, whoever sent it
    finally:
        await db.close()
        await engine.dispose()
