"""Sessions tables (schema in migrations/)."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB, TSTZRANGE, Range
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata, utcnow


class Base(DeclarativeBase):
    """This service's tables (its own database, its own metadata)."""

    metadata = service_metadata()


class PersonProjection(Base):
    """A person as scheduling needs them, kept from `person.*` events."""

    __tablename__ = "person"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    external_id: Mapped[str]
    email: Mapped[str | None]
    display_name: Mapped[str | None]
    time_zone: Mapped[str | None]
    employment_status: Mapped[str]
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchProjection(Base):
    """A match as scheduling needs it, kept from `match.*` events."""

    __tablename__ = "match"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    group_id: Mapped[uuid.UUID | None]
    mentor_person_id: Mapped[uuid.UUID | None]
    mentee_person_id: Mapped[uuid.UUID | None]
    mentor_external_id: Mapped[str | None]
    mentee_external_id: Mapped[str | None]
    status: Mapped[str]
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Availability(Base):
    """A person's weekly windows in their zone, and date exceptions (as validated JSON)."""

    __tablename__ = "availability"

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(primary_key=True)
    time_zone: Mapped[str]
    weekly: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    exceptions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Session(Base):
    """A one-off session or a recurring series."""

    __tablename__ = "session"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID]
    match_id: Mapped[uuid.UUID | None]
    group_id: Mapped[uuid.UUID | None]
    program_id: Mapped[uuid.UUID | None]
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_minutes: Mapped[int]
    time_zone: Mapped[str]
    rrule: Mapped[str | None]
    title: Mapped[str | None]
    agenda: Mapped[str | None]
    location: Mapped[str | None]
    video_url: Mapped[str | None]
    status: Mapped[str]
    reason: Mapped[str | None]
    split_from: Mapped[uuid.UUID | None]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class SessionParticipant(Base):
    """Someone a session includes."""

    __tablename__ = "session_participant"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("session.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID | None]
    role: Mapped[str]
    active: Mapped[bool] = mapped_column(default=True)


class Occurrence(Base):
    """One occurrence of a session; `original_starts_at` names it, `starts_at` may move."""

    __tablename__ = "occurrence"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    org_id: Mapped[uuid.UUID]
    original_starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str]
    reason: Mapped[str | None]
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Busy(Base):
    """A participant's time taken by an occurrence (exclusion constraint: no overlaps)."""

    __tablename__ = "busy"

    occurrence_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("occurrence.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(primary_key=True)
    session_id: Mapped[uuid.UUID]
    org_id: Mapped[uuid.UUID]
    during: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)


class Reminder(Base):
    """A reminder to send `lead_minutes` before an occurrence; sent once."""

    __tablename__ = "reminder"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    occurrence_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("occurrence.id", ondelete="CASCADE")
    )
    org_id: Mapped[uuid.UUID]
    lead_minutes: Mapped[int]
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CalendarFeed(Base):
    """A secret calendar link of one person (only the token's hash is stored)."""

    __tablename__ = "calendar_feed"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    org_id: Mapped[uuid.UUID]
    external_id: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
