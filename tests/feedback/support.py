"""Producing events to the test broker as another service would (real broker, real
envelopes), and reading the feedback service's own tables."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg

from devstack.broker import Broker
from shared.events import CloudEvent, EventData, event_model, make_event
from shared.kafka import EventPublisher, OutgoingRecord
from tests.helpers import kafka_settings

Connect = Callable[[str], Awaitable[asyncpg.Connection]]


def envelope(
    data: EventData, org_id: str, *, at: datetime | None = None, source: str = "test"
) -> CloudEvent:
    """The CloudEvent another service would publish for `data` (at `at`, if given)."""
    event = make_event(data, source=source, orgid=org_id)
    return event.model_copy(update={"time": at}) if at is not None else event


async def produce(broker: Broker, *events: CloudEvent) -> None:
    """Send envelopes to their topics in this order, keyed by subject, as the relay does."""
    publisher = EventPublisher(kafka_settings(broker.bootstrap_servers))
    records = [
        OutgoingRecord(topic=_topic(event), key=event.subject, value=event.model_dump(mode="json"))
        for event in events
    ]
    try:
        await asyncio.to_thread(publisher.publish_batch, records)
    finally:
        await asyncio.to_thread(publisher.close)


def _topic(event: CloudEvent) -> str:
    return str(event_model(event.type).topic)


async def rows(connect: Connect, query: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of a query on the feedback service's database."""
    conn = await connect("feedback")
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()
