"""A broker that goes away loses nothing: the outbox keeps events until the relay can
send them, and consumers resume from their committed offsets; each effect happens once.

Both modes of outage: a frozen broker (SIGSTOP/SIGCONT) and a broker that is killed and
restarted on the same S3-backed log (Tansu on a local moto S3 server)."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devstack.broker import Broker, S3Server
from shared.consumer import EventConsumer
from shared.db import make_engine, make_sessionmaker
from shared.events import CloudEvent, PersonUpsertedV1, Topic
from shared.kafka import EventPublisher
from shared.outbox import OutboxMessage, OutboxRelay, add_event
from tests.helpers import eventually, kafka_settings, read_topic


@dataclass
class Pipeline:
    """An outbox relay feeding a consumer whose handler leaves one row per effect."""

    sessions: async_sessionmaker[AsyncSession]
    org: uuid.UUID

    async def write(self, count: int) -> None:
        """`count` state changes, each in its own transaction with its event."""
        for _ in range(count):
            async with self.sessions() as session, session.begin():
                data = PersonUpsertedV1(person_id=uuid.uuid4(), external_id="E", version=1)
                add_event(session, data, source="test", orgid=self.org)

    async def effects(self) -> tuple[int, int]:
        """(rows, distinct events) the handler left."""
        async with self.sessions() as session:
            row = (await session.execute(
                text("SELECT count(*), count(DISTINCT event_id) FROM effect")
            )).one()  # fmt: skip
            return row[0], row[1]

    async def unpublished(self) -> int:
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).where(OutboxMessage.published_at.is_(None))
            )
            return int(count or 0)

    async def wait_for_effects(self, expected: int, timeout: float = 60.0) -> None:
        async def done() -> bool:
            return (await self.effects())[1] >= expected

        await eventually(done, timeout=timeout, interval=0.2)
        assert await self.effects() == (expected, expected), "an event had a second effect"


async def record_effect(session: AsyncSession, event: CloudEvent, _: Any) -> None:
    await session.execute(text("INSERT INTO effect (event_id) VALUES (:id)"), {"id": event.id})


@pytest.fixture
async def pipeline_on(scratch_db: str) -> AsyncIterator[Any]:
    """Start a relay and a consumer against a given broker; stop them afterwards."""
    engine = make_engine(scratch_db)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE effect (event_id uuid NOT NULL)"))
    sessions = make_sessionmaker(engine)
    running: list[Any] = []

    async def start(broker: Broker) -> Pipeline:
        settings = kafka_settings(broker.bootstrap_servers)
        relay = OutboxRelay(
            service="test", database_url=scratch_db, sessionmaker=sessions,
            publisher=EventPublisher(settings), idle_poll_seconds=0.5,
        )  # fmt: skip
        consumer = EventConsumer(
            settings=settings, group_id="outage-test", handlers={PersonUpsertedV1: record_effect},
            sessionmaker=sessions, dead_letters=EventPublisher(settings),
        )  # fmt: skip
        relay.start()
        consumer.start()
        running.extend([consumer, relay])
        return Pipeline(sessions, uuid.uuid4())

    yield start
    for part in running:
        await part.stop()
    await engine.dispose()


async def test_frozen_broker_delays_but_loses_nothing(pipeline_on: Any, log_dir: Path) -> None:
    broker = Broker(log_dir / f"frozen-{uuid.uuid4().hex[:6]}")
    broker.start()
    try:
        pipeline: Pipeline = await pipeline_on(broker)
        await pipeline.write(25)
        await pipeline.wait_for_effects(25)

        broker.pause()
        await pipeline.write(25)
        await asyncio.sleep(7)  # longer than the producer's delivery timeout: sends fail
        assert await pipeline.unpublished() > 0
        broker.resume()

        await pipeline.wait_for_effects(50)
        assert await pipeline.unpublished() == 0
    finally:
        broker.stop()


async def test_restarted_broker_keeps_its_log_and_nothing_is_lost(
    pipeline_on: Any, log_dir: Path
) -> None:
    logs = log_dir / f"restart-{uuid.uuid4().hex[:6]}"
    s3 = S3Server(logs)
    s3.start()
    broker = Broker(logs, s3=s3)
    try:
        broker.start()
        pipeline: Pipeline = await pipeline_on(broker)
        await pipeline.write(25)
        await pipeline.wait_for_effects(25)

        broker.kill()
        await pipeline.write(25)
        await asyncio.sleep(2)
        assert await pipeline.unpublished() > 0  # held in the outbox while the broker is gone
        broker = Broker(logs, port=broker.port, s3=s3)
        broker.start()

        await pipeline.wait_for_effects(50)
        assert await pipeline.unpublished() == 0

        # The log survived the restart: a new reader sees the events sent before the crash.
        def ours(records: list[Any]) -> list[Any]:
            return [r for r in records if json.loads(r.value)["orgid"] == str(pipeline.org)]

        settings = kafka_settings(broker.bootstrap_servers)
        records = await read_topic(settings, Topic.PEOPLE, lambda rs: len(ours(rs)) >= 50)
        assert len({json.loads(r.value)["id"] for r in ours(records)}) == 50
    finally:
        broker.stop()
        s3.stop()
