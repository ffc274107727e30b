"""The one real thread: an HRIS upsert through the gateway lands in profiles, goes out
through the outbox and the real broker, and reaches every consumer's projection once."""

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from devstack.stack import Stack
from shared.kafka import EventPublisher, OutgoingRecord
from tests.helpers import eventually, kafka_settings

Connect = Callable[[str], Awaitable[asyncpg.Connection]]
CONSUMERS = ("matching", "sessions", "feedback")


async def projected(conn: asyncpg.Connection, person_id: str, version: int) -> Any:
    """The projected row of a person at `version` or newer, else None."""
    return await conn.fetchrow(
        "SELECT * FROM person WHERE id = $1 AND version >= $2", uuid.UUID(person_id), version
    )


async def test_employee_upsert_reaches_every_projection(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], service_db: Connect
) -> None:
    org_id, key = org
    record = {"email": "ada@example.com", "display_name": "Ada", "time_zone": "Europe/London"}
    created = await api.put("/v1/employees/E-100", json=record, headers=key)
    assert created.status_code == 201, created.text
    person_id = created.json()["id"]

    for service in CONSUMERS:
        conn = await service_db(service)
        try:
            row = await eventually(lambda c=conn: projected(c, person_id, 1))  # type: ignore[misc]
            assert row["org_id"] == uuid.UUID(org_id)
            assert row["external_id"] == "E-100"
            assert row["employment_status"] == "active"
        finally:
            await conn.close()

    moved = await api.put(
        "/v1/employees/E-100", json={**record, "time_zone": "Asia/Tokyo"}, headers=key
    )
    assert moved.status_code == 200 and moved.json()["version"] == 2
    conn = await service_db("sessions")
    try:
        row = await eventually(lambda: projected(conn, person_id, 2))
        assert row["time_zone"] == "Asia/Tokyo"
    finally:
        await conn.close()


async def test_redelivered_event_changes_nothing(
    api: httpx.AsyncClient, org: tuple[str, dict[str, str]], service_db: Connect, stack: Stack
) -> None:
    _, key = org
    created = await api.put("/v1/employees/E-200", json={"title": "Engineer"}, headers=key)
    person_id = created.json()["id"]
    matching = await service_db("matching")
    profiles = await service_db("profiles")
    try:
        before = await eventually(lambda: projected(matching, person_id, 1))
        assert before["title"] == "Engineer"
        outbox = await profiles.fetchrow(
            "SELECT topic, key, payload, event_id FROM outbox_message WHERE key = $1", person_id
        )
        assert outbox is not None
        # Deliver the very same event (same id) twice more, as a broker retry would.
        publisher = EventPublisher(kafka_settings(stack.bootstrap_servers))
        duplicate = OutgoingRecord(outbox["topic"], outbox["key"], json.loads(outbox["payload"]))
        publisher.publish_batch([duplicate, duplicate])
        publisher.close()
        # A change after them: same key, same partition, so once it is projected the
        # redeliveries before it were applied too.
        changed = await api.put("/v1/employees/E-200", json={"title": "Lead"}, headers=key)
        assert changed.json()["version"] == 2
        after: Any = await eventually(lambda: projected(matching, person_id, 2))
        # Applied again, to no effect: the projection keeps a person's newest full state by
        # version, so person events need no inbox row (the inbox dedupes the other kinds:
        # tests/shared/test_outbox_and_consumer.py, tests/faults/truth.py).
        assert dict(after) | {"title": "Engineer", "version": 1} == dict(before) | {
            "updated_at": after["updated_at"]
        }
        assert after["title"] == "Lead"
        recorded = await matching.fetchval(
            "SELECT count(*) FROM inbox_message WHERE event_id = $1", outbox["event_id"]
        )
        assert recorded == 0
    finally:
        await matching.close()
        await profiles.close()
