"""The dead-letter desk on the real broker: list what a group dead-lettered, fix the
cause, replay it, and see exactly one effect even when the replay is repeated."""

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devstack.broker import Broker
from shared import dlq
from shared.consumer import EventConsumer
from shared.db import make_engine, make_sessionmaker
from shared.events import CloudEvent, PersonUpsertedV1, Topic, make_event
from shared.kafka import EventPublisher, OutgoingRecord
from tests.helpers import eventually, kafka_settings


@pytest.fixture
async def sessions(scratch_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(scratch_db)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE effect (event_id uuid, orgid text)"))
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_replayed_dead_letter_has_exactly_one_effect(
    sessions: async_sessionmaker[AsyncSession], broker: Broker
) -> None:
    org = uuid.uuid4()
    settings = kafka_settings(broker.bootstrap_servers, consumer_max_attempts=2)
    group = f"test-dlq-{uuid.uuid4().hex[:8]}"
    fixed = False

    async def handler(session: AsyncSession, event: CloudEvent, data: Any) -> None:
        if event.orgid == str(org) and not fixed:
            raise RuntimeError("bug: cannot handle this yet")
        await session.execute(
            text("INSERT INTO effect (event_id, orgid) VALUES (:id, :org)"),
            {"id": event.id, "org": event.orgid},
        )

    async def effects() -> list[Any]:
        async with sessions() as session:
            rows = await session.execute(
                text("SELECT event_id FROM effect WHERE orgid = :org"), {"org": str(org)}
            )
            return [r[0] for r in rows]

    event = make_event(
        PersonUpsertedV1(person_id=uuid.uuid4(), external_id="E-dlq", version=1),
        source="test",
        orgid=org,
    )
    publisher = EventPublisher(settings)
    await asyncio.to_thread(
        publisher.publish_batch,
        [OutgoingRecord(Topic.PEOPLE, event.subject, event.model_dump(mode="json"))],
    )
    consumer = EventConsumer(
        settings=settings, group_id=group, handlers={PersonUpsertedV1: handler},
        sessionmaker=sessions, dead_letters=publisher,
    )  # fmt: skip
    consumer.start()
    try:

        async def listed() -> list[dlq.DeadLetter]:
            return await asyncio.to_thread(dlq.list_dead_letters, settings, group)

        (letter,) = await eventually(listed, timeout=30, interval=0.5)
        assert letter.event_id == str(event.id)
        assert letter.event_type == "mentorbus.person.upserted.v1"
        assert letter.topic == Topic.PEOPLE
        assert letter.offset >= 0
        assert "cannot handle this yet" in letter.error
        assert await effects() == []

        out = io.StringIO()
        argv = ["list", "--group", group, "--bootstrap-servers", broker.bootstrap_servers]
        assert await asyncio.to_thread(dlq.main, [*argv, "--json"], out) == 0
        assert json.loads(out.getvalue().splitlines()[0])["event_id"] == str(event.id)

        fixed = True
        replay = ["replay", "--group", group, "--bootstrap-servers", broker.bootstrap_servers]
        # Replayed twice (an operator's double run): the inbox keeps it to one effect.
        for chosen in (["--position", letter.position], ["--event-id", str(event.id)]):
            out = io.StringIO()
            assert await asyncio.to_thread(dlq.main, [*replay, *chosen], out) == 0
            assert "replayed 1 record(s)" in out.getvalue()
        assert await eventually(effects, timeout=30) == [event.id]
        # Let the second replay be consumed too, then check there is still one effect.
        marker = make_event(
            PersonUpsertedV1(person_id=uuid.uuid4(), external_id="E-after", version=1),
            source="test",
            orgid=org,
        )
        await asyncio.to_thread(
            publisher.publish_batch,
            [OutgoingRecord(Topic.PEOPLE, event.subject, marker.model_dump(mode="json"))],
        )
        rows = await eventually(lambda: _with(effects, marker.id), timeout=30)
        assert sorted(map(str, rows)) == sorted([str(event.id), str(marker.id)])
    finally:
        await consumer.stop()
        publisher.close()


async def _with(effects: Any, event_id: uuid.UUID) -> list[Any]:
    rows: list[Any] = await effects()
    return rows if event_id in rows else []
