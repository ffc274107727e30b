"""The one real thread: an HRIS upsert through the gateway lands in profiles, goes out
through the outbox and the real broker, and reaches every consumer's projection once."""

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

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


def duplicates_seen(metrics_text: str, consumer: str) -> float:
    """How many redelivered events a consumer group recognised and skipped."""
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if (
                sample.name == "mentorbus_events_consumed_total"
                and sample.labels.get("consumer") == consumer
                and sample.labels.get("outcome") == "duplicate"
            ):
                return sample.value
    return 0.0


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
        outbox = await profiles.fetchrow(
            "SELECT topic, key, payload, event_id FROM outbox_message WHERE key = $1", person_id
        )
        assert outbox is not None
        async with httpx.AsyncClient(base_url=stack.url("matching")) as direct:
            seen_before = duplicates_seen((await direct.get("/metrics")).text, "mentorbus.matching")

            # Deliver the very same event (same id) twice more, as a broker retry would.
            publisher = EventPublisher(kafka_settings(stack.bootstrap_servers))
            duplicate = OutgoingRecord(
                outbox["topic"], outbox["key"], json.loads(outbox["payload"])
            )
            publisher.publish_batch([duplicate, duplicate])
            publisher.close()

            async def both_skipped() -> bool:
                text = (await direct.get("/metrics")).text
                return duplicates_seen(text, "mentorbus.matching") >= seen_before + 2

            await eventually(both_skipped)
        after: Any = await matching.fetchrow(
            "SELECT * FROM person WHERE id = $1", uuid.UUID(person_id)
        )
        assert dict(after) == dict(before)
        handled = await matching.fetchval(
            "SELECT count(*) FROM inbox_message WHERE event_id = $1", outbox["event_id"]
        )
        assert handled == 1
    finally:
        await matching.close()
        await profiles.close()
