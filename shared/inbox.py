"""Inbox: the event ids each consumer group has handled, written in the handler's own
transaction so a redelivered event has no second effect."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, Uuid
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, driver_connection, utcnow


class InboxMessage(Base):
    """One handled event; the primary key makes the second insert a no-op."""

    __tablename__ = "inbox_message"

    consumer: Mapped[str] = mapped_column(String, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    event_type: Mapped[str] = mapped_column(String)
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


async def claim_event(
    session: AsyncSession, consumer: str, event_id: uuid.UUID, event_type: str
) -> bool:
    """Record the event as handled by `consumer`; False if it already was."""
    result = await session.execute(
        insert(InboxMessage)
        .values(consumer=consumer, event_id=event_id, event_type=event_type, handled_at=utcnow())
        .on_conflict_do_nothing()
        .returning(InboxMessage.event_id)
    )
    return result.first() is not None


async def claim_events(
    session: AsyncSession, consumer: str, events: list[tuple[uuid.UUID, str]]
) -> set[uuid.UUID]:
    """Record a batch of events as handled in one statement; returns the ids that were
    not handled before (the others are redeliveries)."""
    if not events:
        return set()
    conn = await driver_connection(session)
    # Arrays, not a multi-row VALUES: no per-value statement building for 500 events.
    rows = await conn.fetch(
        _CLAIM_MANY, consumer, [i for i, _ in events], [t for _, t in events], utcnow()
    )
    # asyncpg's UUIDs are `uuid.UUID`s already (equal and hashed alike): no conversion.
    return {r[0] for r in rows}


_CLAIM_MANY = """
    INSERT INTO inbox_message (consumer, event_id, event_type, handled_at)
    SELECT $1, e.id, e.type, $4 FROM unnest($2::uuid[], $3::text[]) AS e(id, type)
    ON CONFLICT DO NOTHING
    RETURNING event_id
"""
