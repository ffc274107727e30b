"""Feedback tables (schema in migrations/)."""

import uuid
from datetime import date, datetime

from sqlalchemy import DateTime
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, utcnow


class PersonProjection(Base):
    """A person as feedback needs them, kept from `person.*` events."""

    __tablename__ = "person"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    external_id: Mapped[str]
    display_name: Mapped[str | None]
    employment_status: Mapped[str]
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProgramProjection(Base):
    """A program as feedback needs it, kept from `program.*` events."""

    __tablename__ = "program"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    name: Mapped[str]
    format: Mapped[str]
    status: Mapped[str]
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EnrollmentProjection(Base):
    """An enrollment (for participation figures), kept from `enrollment.*` events;
    `created_at`/`withdrawn_at` are the times of those events."""

    __tablename__ = "enrollment"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    employee_external_id: Mapped[str]
    role: Mapped[str]
    status: Mapped[str]
    version: Mapped[int]
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchProjection(Base):
    """A match, kept from `match.*` events; `created_at`, `activated_at` and `ended_at`
    are the times of the created, accepted and ended/completed events."""

    __tablename__ = "match"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    group_id: Mapped[uuid.UUID | None]
    mentee_enrollment_id: Mapped[uuid.UUID]
    mentor_enrollment_id: Mapped[uuid.UUID]
    mentee_person_id: Mapped[uuid.UUID | None]
    mentor_person_id: Mapped[uuid.UUID | None]
    mentee_external_id: Mapped[str | None]
    mentor_external_id: Mapped[str | None]
    status: Mapped[str]
    score: Mapped[float | None]
    end_reason: Mapped[str | None]
    version: Mapped[int]
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def participants(self) -> dict[str, str]:
        """External id -> role (`mentee`, `mentor`) of the people in this match."""
        people = {}
        if self.mentee_external_id:
            people[self.mentee_external_id] = "mentee"
        if self.mentor_external_id:
            people[self.mentor_external_id] = "mentor"
        return people
