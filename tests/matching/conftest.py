"""What matching's tests share: a feed of events into the running stack's matching (as
profiles would publish them), and sessions on a scratch database with matching's schema."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devstack.stack import Stack
from shared.db import make_engine, make_sessionmaker, migrate
from shared.events import (
    EnrollmentState,
    EventData,
    PersonDeactivatedV1,
    PersonUpsertedV1,
    ProgramCreatedV1,
    ProgramUpdatedV1,
    make_event,
)
from shared.kafka import EventPublisher, OutgoingRecord
from tests.helpers import eventually, kafka_settings

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "matching" / "migrations"

Connect = Callable[[str], Awaitable[asyncpg.Connection]]
Org = tuple[str, dict[str, str]]


class Feed:
    """Publishes events as profiles would, and waits until matching has projected them."""

    def __init__(self, stack: Stack, conn: asyncpg.Connection) -> None:
        self.publisher = EventPublisher(kafka_settings(stack.bootstrap_servers))
        self.conn = conn

    async def publish(self, org_id: str, *events: EventData) -> None:
        """Publish events (as their owning service would), without waiting for them."""
        records = []
        for data in events:
            event = make_event(data, source="tests/profiles", orgid=org_id)
            records.append(OutgoingRecord(data.topic, event.subject, event.model_dump(mode="json")))
        await asyncio.to_thread(self.publisher.publish_batch, records)

    async def send(self, org_id: str, *events: EventData) -> None:
        """Publish events and wait until each is in matching's projection."""
        await self.publish(org_id, *events)
        for data in events:
            await eventually(lambda d=data: self._projected(d))  # type: ignore[misc]

    async def _projected(self, data: EventData) -> bool:
        if isinstance(data, PersonUpsertedV1 | PersonDeactivatedV1):
            table, key = "person", data.person_id
        elif isinstance(data, ProgramCreatedV1 | ProgramUpdatedV1):
            table, key = "program", data.program_id
        else:
            assert isinstance(data, EnrollmentState)
            table, key = "enrollment", data.enrollment_id
        version = await self.conn.fetchval(f"SELECT version FROM {table} WHERE id = $1", key)
        return version is not None and version >= data.version


@pytest.fixture
async def feed(stack: Stack, service_db: Connect) -> AsyncIterator[Feed]:
    """A publisher into the stack's broker, watching matching's database."""
    conn = await service_db("matching")
    f = Feed(stack, conn)
    yield f
    await asyncio.to_thread(f.publisher.close)
    await conn.close()


@pytest.fixture
async def sessions(scratch_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database with matching's schema."""
    await migrate(scratch_db, MIGRATIONS)
    engine = make_engine(scratch_db, pool_size=4)
    yield make_sessionmaker(engine)
    await engine.dispose()
