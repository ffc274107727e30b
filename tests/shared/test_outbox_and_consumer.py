"""The outbox relay and the consumer on real PostgreSQL and the real broker."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from devstack.broker import Broker
from shared.consumer import EventConsumer, batched
from shared.db import (
    SHARED_MIGRATIONS,
    Base,
    make_engine,
    make_sessionmaker,
    migrate,
    upsert_newer_many,
)
from shared.events import (
    CloudEvent,
    PersonDeactivatedV1,
    PersonUpsertedV1,
    Topic,
    dead_letter_topic,
    make_event,
)
from shared.kafka import EventPublisher, OutgoingRecord
from shared.outbox import OutboxMessage, OutboxRelay, add_event
from tests.helpers import eventually, kafka_settings, read_topic

EFFECT_TABLE = "CREATE TABLE effect (event_id uuid, external_id text, orgid text)"


@pytest.fixture
async def sessions(scratch_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(scratch_db)
    async with engine.begin() as conn:
        await conn.execute(text(EFFECT_TABLE))
    yield make_sessionmaker(engine)
    await engine.dispose()


def upserted(person_id: uuid.UUID, version: int, external_id: str = "E-1") -> PersonUpsertedV1:
    return PersonUpsertedV1(person_id=person_id, external_id=external_id, version=version)


async def record_effect(session: AsyncSession, event: CloudEvent, data: Any) -> None:
    """A test handler whose every run leaves a row, so a second effect would show."""
    if data.external_id == "explode":
        raise RuntimeError("this handler always fails")
    await session.execute(
        text("INSERT INTO effect (event_id, external_id, orgid) VALUES (:id, :ext, :org)"),
        {"id": event.id, "ext": data.external_id, "org": event.orgid},
    )


async def effects(
    sessionmaker: async_sessionmaker[AsyncSession], org: uuid.UUID
) -> list[tuple[Any, ...]]:
    """The effects left by events of `org` (the topic also carries other tests' events)."""
    async with sessionmaker() as session:
        rows = await session.execute(
            text("SELECT event_id, external_id FROM effect WHERE orgid = :org"), {"org": str(org)}
        )
        return [tuple(r) for r in rows]


async def test_migrations_apply_once(scratch_db: str) -> None:
    assert await migrate(scratch_db, SHARED_MIGRATIONS) == []


async def test_relay_publishes_committed_events_in_order_and_marks_them(
    sessions: async_sessionmaker[AsyncSession], scratch_db: str, broker: Broker
) -> None:
    org, person_id = uuid.uuid4(), uuid.uuid4()
    async with sessions() as session, session.begin():
        for version in range(1, 21):
            add_event(session, upserted(person_id, version), source="test", orgid=org)
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            add_event(session, upserted(person_id, 99), source="test", orgid=org)
            raise RuntimeError("the use case failed: its event must never leave")

    settings = kafka_settings(broker.bootstrap_servers)
    relay = OutboxRelay(
        service="test", database_url=scratch_db, sessionmaker=sessions,
        publisher=EventPublisher(settings), batch_size=8,
    )  # fmt: skip
    assert [await relay.publish_pending() for _ in range(2)] == [8, 8]
    # The relay's own loop: the rest, pipelined (read and mark while a batch is sent).
    assert await relay.publish_all() == 4
    assert await relay.publish_pending() == 0
    async with sessions() as session, session.begin():
        for version in range(21, 41):
            add_event(session, upserted(person_id, version), source="test", orgid=org)
    assert await relay.publish_all() == 20  # three batches, in order
    async with sessions() as session:
        unpublished = await session.scalar(
            select(func.count()).where(OutboxMessage.published_at.is_(None))
        )
    assert unpublished == 0
    assert await relay.purge_older_than(timedelta(hours=1)) == 0  # young rows stay
    assert await relay.purge_older_than(timedelta(0)) == 40  # published rows go
    await relay.stop()

    def ours(records: list[Any]) -> list[dict[str, Any]]:
        return [e for e in (json.loads(r.value) for r in records) if e["orgid"] == str(org)]

    records = await read_topic(settings, Topic.PEOPLE, lambda rs: len(ours(rs)) >= 40)
    assert [e["data"]["version"] for e in ours(records)] == list(range(1, 41))
    assert all(
        r.key == str(person_id).encode()
        for r in records
        if json.loads(r.value)["orgid"] == str(org)
    )


async def test_consumer_handles_once_and_dead_letters_what_it_cannot(
    sessions: async_sessionmaker[AsyncSession], broker: Broker
) -> None:
    org = uuid.uuid4()
    settings = kafka_settings(broker.bootstrap_servers, consumer_max_attempts=2)
    group = f"test-{uuid.uuid4().hex[:8]}"
    first = make_event(upserted(uuid.uuid4(), 1, "first"), source="t", orgid=org)
    failing = make_event(upserted(uuid.uuid4(), 1, "explode"), source="t", orgid=org)
    last = make_event(upserted(uuid.uuid4(), 1, "last"), source="t", orgid=org)
    publisher = EventPublisher(settings)
    # One key, so one partition: the poison and the failing event sit *between* good ones.
    key = "same-partition"
    raw = [e.model_dump(mode="json") for e in (first, first, failing)]
    await _publish(publisher, [OutgoingRecord(Topic.PEOPLE, key, v) for v in raw])
    poison = {"specversion": "1.0", "type": "garbage"}
    # A version this build does not know of a type it handles: dead-lettered, not skipped.
    newer = {**first.model_dump(mode="json"), "id": str(uuid.uuid4())}
    newer["type"] = newer["type"].removesuffix(".v1") + ".v9"
    # A type that is not this consumer's at all: skipped, as other services' events are.
    foreign = {**newer, "id": str(uuid.uuid4()), "type": "mentorbus.someone.else.v1"}
    await _publish(
        publisher, [OutgoingRecord(Topic.PEOPLE, key, v) for v in (poison, newer, foreign)]
    )
    await _publish(publisher, [OutgoingRecord(Topic.PEOPLE, key, last.model_dump(mode="json"))])

    consumer = EventConsumer(
        settings=settings, group_id=group, handlers={PersonUpsertedV1: record_effect},
        sessionmaker=sessions, dead_letters=publisher,
    )  # fmt: skip
    consumer.start()
    try:
        rows = await eventually(lambda: _effects_of(sessions, org, {"first", "last"}), timeout=30)
        assert sorted(r[1] for r in rows) == ["first", "last"]  # the duplicate left no row
        dead = await read_topic(settings, dead_letter_topic(group), lambda rs: len(rs) >= 3)
        reasons = [json.loads(r.value) for r in dead]
        assert len(reasons) == 3, reasons  # the foreign type is not among them
        assert any("always fails" in d["error"] for d in reasons)
        assert any(d["error"].startswith("invalid event") for d in reasons)
        assert any(d["error"].endswith("person.upserted.v9") for d in reasons)
        assert all(d["topic"] == Topic.PEOPLE for d in reasons)
    finally:
        await consumer.stop()
        publisher.close()


async def _effects_of(
    sessions: async_sessionmaker[AsyncSession], org: uuid.UUID, wanted: set[str]
) -> list[tuple[Any, ...]]:
    rows = await effects(sessions, org)
    return rows if {r[1] for r in rows} >= wanted else []


async def _publish(publisher: EventPublisher, records: list[OutgoingRecord]) -> None:
    await asyncio.to_thread(publisher.publish_batch, records)


class Projected(Base):
    """A version-guarded projection for the batch-handler test."""

    __tablename__ = "test_projected_person"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    external_id: Mapped[str]
    version: Mapped[int]


async def _create_projected(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The `Projected` table (once per scratch database; tests tell their rows apart)."""
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "CREATE TABLE IF NOT EXISTS test_projected_person (id uuid PRIMARY KEY,"
                " org_id uuid NOT NULL, external_id text NOT NULL, version integer NOT NULL)"
            )
        )


async def test_batch_handler_applies_a_batch_set_based_newest_version_wins(
    sessions: async_sessionmaker[AsyncSession], broker: Broker
) -> None:
    await _create_projected(sessions)
    org = uuid.uuid4()
    settings = kafka_settings(broker.bootstrap_servers)
    calls: list[int] = []

    async def apply(session: AsyncSession, events: list[tuple[CloudEvent, Any]]) -> None:
        mine = sum(1 for e, _ in events if e.orgid == str(org))  # the topic is shared
        if mine:
            calls.append(mine)
        rows = [
            {
                "id": d.person_id,
                "org_id": e.orgid,
                "external_id": d.external_id,
                "version": d.version,
            }
            for e, d in events
        ]
        await upsert_newer_many(session, Projected, rows)

    handler = batched(apply)
    ada, bob = uuid.uuid4(), uuid.uuid4()
    # Out of order, a redelivery, and two people: the newest version of each must win.
    sent = [
        make_event(upserted(ada, 1, "ada-v1"), source="t", orgid=org),
        make_event(upserted(ada, 3, "ada-v3"), source="t", orgid=org),
        make_event(upserted(ada, 2, "ada-v2"), source="t", orgid=org),
        make_event(upserted(bob, 1, "bob-v1"), source="t", orgid=org),
    ]
    records = [OutgoingRecord(Topic.PEOPLE, "one-key", e.model_dump(mode="json")) for e in sent]
    publisher = EventPublisher(settings)
    await _publish(publisher, [*records, records[1]])
    consumer = EventConsumer(
        settings=settings, group_id=f"test-{uuid.uuid4().hex[:8]}",
        handlers={PersonUpsertedV1: handler, PersonDeactivatedV1: handler},
        sessionmaker=sessions, dead_letters=publisher,
    )  # fmt: skip
    consumer.start()

    async def projected() -> list[tuple[Any, ...]]:
        async with sessions() as session:
            rows = await session.execute(
                select(Projected.external_id, Projected.version)
                .where(Projected.org_id == org)
                .order_by(Projected.external_id)
            )
            found = [tuple(r) for r in rows]
            return found if len(found) == 2 else []

    try:
        assert await eventually(projected, timeout=30) == [("ada-v3", 3), ("bob-v1", 1)]
        # Fewer calls than events: the partition batch went in together, not one by one.
        assert sum(calls) == 4 and len(calls) < 4
        # A late, older redelivery changes nothing.
        stale = make_event(upserted(ada, 2, "ada-stale"), source="t", orgid=org)
        await _publish(
            publisher, [OutgoingRecord(Topic.PEOPLE, "one-key", stale.model_dump(mode="json"))]
        )
        await eventually(lambda: _calls_reach(calls, 5), timeout=30)
        assert await projected() == [("ada-v3", 3), ("bob-v1", 1)]
    finally:
        await consumer.stop()
        publisher.close()


async def _calls_reach(calls: list[int], total: int) -> bool:
    return sum(calls) >= total


async def test_an_idempotent_batch_handler_applies_redeliveries_and_keeps_no_inbox(
    sessions: async_sessionmaker[AsyncSession], broker: Broker
) -> None:
    await _create_projected(sessions)
    org = uuid.uuid4()
    settings = kafka_settings(broker.bootstrap_servers)
    applied: list[str] = []

    async def apply(session: AsyncSession, events: list[tuple[CloudEvent, Any]]) -> None:
        applied.extend(d.external_id for e, d in events if e.orgid == str(org))
        rows = [
            {"id": d.person_id, "org_id": e.orgid, "external_id": d.external_id,
             "version": d.version}
            for e, d in events
        ]  # fmt: skip
        await upsert_newer_many(session, Projected, rows)

    ada = uuid.uuid4()
    v2 = make_event(upserted(ada, 2, "ada-v2"), source="t", orgid=org)
    v1 = make_event(upserted(ada, 1, "ada-v1"), source="t", orgid=org)
    # The newest first, then itself again and an older state: both reach the handler.
    sent = [v2, v2, v1]
    publisher = EventPublisher(settings)
    await _publish(
        publisher,
        [OutgoingRecord(Topic.PEOPLE, "one-key", e.model_dump(mode="json")) for e in sent],
    )
    consumer = EventConsumer(
        settings=settings, group_id=f"test-{uuid.uuid4().hex[:8]}",
        handlers={PersonUpsertedV1: batched(apply, idempotent=True)},
        sessionmaker=sessions, dead_letters=publisher,
    )  # fmt: skip
    consumer.start()
    try:
        await eventually(lambda: _async(len(applied) >= 3), timeout=30)
        assert applied == ["ada-v2", "ada-v2", "ada-v1"]
        async with sessions() as session:
            stored = (
                (await session.execute(select(Projected.version).where(Projected.id == ada)))
                .scalars()
                .all()
            )
            recorded = await session.scalar(
                text("SELECT count(*) FROM inbox_message WHERE event_id IN (:a, :b)"),
                {"a": v1.id, "b": v2.id},
            )
        assert stored == [2]  # the redelivery and the older state changed nothing
        assert recorded == 0
    finally:
        await consumer.stop()
        publisher.close()


async def _async(value: bool) -> bool:
    return value
