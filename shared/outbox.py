"""Transactional outbox: `add_event` writes the event beside the state change; the
`OutboxRelay` publishes committed rows to Kafka in order and marks them sent."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter
from sqlalchemy import (
    BigInteger,
    DateTime,
    String,
    Uuid,
    delete,
    insert,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, asyncpg_dsn, driver_connection, utcnow
from shared.events import CloudEvent, EventData, make_event
from shared.inbox import InboxMessage
from shared.kafka import EventPublisher, OutgoingRecord

log = logging.getLogger(__name__)

OUTBOX_PUBLISHED = Counter(
    "mentorbus_outbox_published_total", "Outbox events published to Kafka", ["service"]
)
OUTBOX_FAILURES = Counter(
    "mentorbus_outbox_publish_failures_total", "Outbox batches that failed to publish", ["service"]
)


class OutboxMessage(Base):
    """An event waiting for (or done with) publication; see shared/migrations."""

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(Uuid, unique=True)
    topic: Mapped[str] = mapped_column(String)
    key: Mapped[str] = mapped_column(String)
    event_type: Mapped[str] = mapped_column(String)
    payload: Mapped[dict[str, object]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def add_event(session: AsyncSession, data: EventData, *, source: str, orgid: object) -> CloudEvent:
    """Stage an event in the caller's transaction; it is published only if that commits."""
    event = make_event(data, source=source, orgid=str(orgid))
    session.add(
        OutboxMessage(
            event_id=event.id,
            topic=data.topic,
            key=event.subject,
            event_type=event.type,
            payload=event.model_dump(mode="json"),
        )
    )
    return event


async def add_events(
    session: AsyncSession, data: Sequence[EventData], *, source: str, orgid: object
) -> list[CloudEvent]:
    """Stage many events of one organization with a single multi-row insert: `add_event`
    for batches of thousands (e.g. a matching run applied), in the caller's transaction."""
    events = [make_event(d, source=source, orgid=str(orgid)) for d in data]
    if events:
        now = utcnow()
        await session.execute(
            insert(OutboxMessage),
            [
                {
                    "event_id": event.id,
                    "topic": d.topic,
                    "key": event.subject,
                    "event_type": event.type,
                    "payload": event.model_dump(mode="json"),
                    "created_at": now,
                }
                for d, event in zip(data, events, strict=True)
            ],
        )
    return events


PURGE_EVERY_SECONDS = 600

_SELECT_PENDING = """
    SELECT id, topic, key, payload::text AS payload FROM outbox_message
    WHERE published_at IS NULL ORDER BY id LIMIT $1
"""
# Rows need no row locks: one relay per database holds the advisory lock below, and a
# second one in a failover window could only resend (consumers dedupe by event id).
_SELECT_AFTER = """
    SELECT id, topic, key, payload::text AS payload FROM outbox_message
    WHERE published_at IS NULL AND id > $1 ORDER BY id LIMIT $2
"""
# While the outbox grows faster than autovacuum analyzes it (a first sync), the planner
# took the waiting rows for a few hundred and read them all, payloads included, to sort
# them (250 ms a batch at 20,000 waiting). In id order from the index it stops at $2 rows.
_IN_ID_ORDER = "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off"
# The range keeps the update on the primary key's index whatever the statistics say (with
# stale ones, `id = ANY` alone scanned the whole table, sent rows included, every batch).
_MARK_PUBLISHED = """
    UPDATE outbox_message SET published_at = $2
    WHERE id = ANY($1::bigint[]) AND id BETWEEN $3 AND $4
"""

# One relay per service database at a time keeps per-key order: replicas wait on this lock.
_RELAY_LOCK = 7_424_012


class OutboxRelay:
    """Publishes the outbox to Kafka: batch by batch, in id order, one flush per batch.

    Wakes on the outbox trigger's NOTIFY (or every `idle_poll_seconds` as a safety net).
    When the broker is unreachable the batch stays unpublished and is retried with
    backoff, so a broker outage delays events but never loses them. Delivery is
    at-least-once: a crash between send and mark resends, and consumers dedupe by id.
    """

    def __init__(
        self,
        *,
        service: str,
        database_url: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        batch_size: int = 2000,
        idle_poll_seconds: float = 2.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self._service = service
        self._dsn = asyncpg_dsn(database_url)
        self._sessionmaker = sessionmaker
        self._publisher = publisher
        self._batch_size = batch_size
        self._idle_poll_seconds = idle_poll_seconds
        self._retention = retention
        self._last_purge = time.monotonic()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Whether this relay holds the lock (replicas that do not only wait for it).
        self._leading = False

    def start(self) -> None:
        """Run the relay in the background of the current event loop."""
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._service}")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop the relay. The one holding the lock finishes the batch in flight, sends
        one more if rows are waiting (what the last requests committed) and marks them,
        within `grace_seconds`; past that, or on a replica waiting for the lock, it is
        cancelled. Unpublished rows stay for the next relay either way."""
        self._stopping = True
        self._wakeup.set()
        if self._task:
            if self._leading:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._publisher.close)

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                conn = await asyncpg.connect(self._dsn)
                try:
                    await conn.execute("SELECT pg_advisory_lock($1)", _RELAY_LOCK)
                    self._leading = True
                    await conn.add_listener("outbox_message", self._on_notify)
                    # The lock lives as long as this connection: if the database drops
                    # it, another replica may take the lock, so this one must stop
                    # sending at once and queue for the lock again.
                    conn.add_termination_listener(self._on_notify)
                    backoff = 0.5
                    await self._relay_forever(conn)
                finally:
                    self._leading = False
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay connection failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    async def _relay_forever(self, lock: asyncpg.Connection) -> None:
        backoff = 0.5
        while True:
            if lock.is_closed():
                raise ConnectionError("the relay lock's connection was lost")
            stopping = self._stopping  # a stop seen now still gets this last pass
            self._wakeup.clear()
            try:
                sent = await self.publish_all()
                backoff = 0.5
            except Exception as exc:  # broker down or slow: keep the rows, retry later
                OUTBOX_FAILURES.labels(self._service).inc()
                log.warning("outbox publish failed (%s); retrying in %.1fs", exc, backoff)
                if stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if stopping:
                return
            if sent < self._batch_size:
                if time.monotonic() - self._last_purge > PURGE_EVERY_SECONDS:
                    await self.purge_older_than(self._retention)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._idle_poll_seconds)

    async def purge_older_than(self, age: timedelta) -> int:
        """Delete published outbox rows, and inbox records, older than `age`.

        An inbox record only has to outlive the redeliveries of its event, which come
        within minutes (a rebalance) or, at worst, a consumer's offset retention."""
        self._last_purge = time.monotonic()
        cutoff = utcnow() - age
        async with self._sessionmaker() as session, session.begin():
            sent = await session.execute(
                delete(OutboxMessage).where(OutboxMessage.published_at < cutoff)
            )
            handled = await session.execute(
                delete(InboxMessage).where(InboxMessage.handled_at < cutoff)
            )
        return int(sent.rowcount or 0) + int(handled.rowcount or 0)  # type: ignore[attr-defined]

    async def publish_all(self) -> int:
        """Publish every unpublished row, batch by batch in id order, one flush per batch;
        returns how many. While a batch is on its way to the broker, the previous one is
        marked sent and the next one read, so the database and the broker work at once
        (a batch is marked only once the broker acknowledged all of it)."""
        total = 0
        batch = await self._read(after=0)
        sent_ids: list[int] = []
        while batch:
            records = [OutgoingRecord(r["topic"], r["key"], r["payload"].encode()) for r in batch]
            sending = asyncio.ensure_future(
                asyncio.to_thread(self._publisher.publish_batch, records)
            )
            try:
                if sent_ids:
                    await self._mark(sent_ids)
                full = len(batch) == self._batch_size
                upcoming = await self._read(after=batch[-1]["id"]) if full else []
            finally:
                await asyncio.wait([sending])  # never leave a send running behind us
            sending.result()  # the broker's failure, if any: this batch stays unpublished
            sent_ids = [r["id"] for r in batch]
            total += len(batch)
            OUTBOX_PUBLISHED.labels(self._service).inc(len(batch))
            # Stopping: this batch is sent (and marked below); the rest waits for the next relay.
            batch = [] if self._stopping else upcoming
        if sent_ids:
            await self._mark(sent_ids)
        return total

    async def _read(self, *, after: int) -> list[Any]:
        async with self._sessionmaker() as session, session.begin():
            conn = await driver_connection(session)
            await conn.execute(_IN_ID_ORDER)
            return list(await conn.fetch(_SELECT_AFTER, after, self._batch_size))

    async def _mark(self, ids: list[int]) -> None:
        async with self._sessionmaker() as session, session.begin():
            conn = await driver_connection(session)
            await conn.execute(_MARK_PUBLISHED, ids, utcnow(), min(ids), max(ids))

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows and mark them sent; returns how many."""
        async with self._sessionmaker() as session, session.begin():
            conn = await driver_connection(session)
            # Plain statements on the session's connection (same transaction): no ORM
            # rows, no per-id bind parameters. The payload as text goes to the wire as is.
            await conn.execute(_IN_ID_ORDER)
            rows = await conn.fetch(_SELECT_PENDING, self._batch_size)
            if not rows:
                return 0
            records = [OutgoingRecord(r["topic"], r["key"], r["payload"].encode()) for r in rows]
            await asyncio.to_thread(self._publisher.publish_batch, records)
            ids = [r["id"] for r in rows]
            await conn.execute(_MARK_PUBLISHED, ids, utcnow(), ids[0], ids[-1])
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)
