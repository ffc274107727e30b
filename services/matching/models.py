"""Matching tables (schema in migrations/)."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, DateTime, Double, Float, LargeBinary, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata, utcnow


class Base(DeclarativeBase):
    """This service's tables (its own database, its own metadata)."""

    metadata = service_metadata()


class PersonProjection(Base):
    """A person as matching needs them, kept from `person.*` events."""

    __tablename__ = "person"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    external_id: Mapped[str]
    department: Mapped[str | None]
    division: Mapped[str | None]
    title: Mapped[str | None]
    time_zone: Mapped[str | None]
    languages: Mapped[list[str]] = mapped_column(ARRAY(String), default=list)
    manager_external_id: Mapped[str | None]
    hire_date: Mapped[date | None]
    employment_status: Mapped[str]
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProgramProjection(Base):
    """A program as matching needs it, kept from `program.*` events."""

    __tablename__ = "program"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    version: Mapped[int]
    name: Mapped[str]
    format: Mapped[str]
    status: Mapped[str]
    max_mentees_per_mentor: Mapped[int]
    criteria: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EnrollmentProjection(Base):
    """An enrollment as matching needs it, kept from `enrollment.*` events."""

    __tablename__ = "enrollment"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    employee_external_id: Mapped[str]
    version: Mapped[int]
    role: Mapped[str]
    skills: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    goals: Mapped[list[str]] = mapped_column(ARRAY(String), default=list)
    languages: Mapped[list[str]] = mapped_column(ARRAY(String), default=list)
    capacity: Mapped[int | None]
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str]
    goal_vectors: Mapped[bytes | None] = mapped_column(LargeBinary)
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PoolRevision(Base):
    """A counter per program (or per organization, for its people), bumped whenever the
    candidate pools it covers may have changed."""

    __tablename__ = "pool_revision"

    scope_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)


OPEN_STATUSES = ("proposed", "active")


class Match(Base):
    """A mentee and a mentor in a program, through proposed -> active -> ended/completed
    (or declined)."""

    __tablename__ = "match"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    mentee_enrollment_id: Mapped[uuid.UUID]
    mentor_enrollment_id: Mapped[uuid.UUID]
    mentee_person_id: Mapped[uuid.UUID | None]
    mentor_person_id: Mapped[uuid.UUID | None]
    mentee_external_id: Mapped[str | None]
    mentor_external_id: Mapped[str | None]
    status: Mapped[str]
    score: Mapped[float | None] = mapped_column(Double)
    breakdown: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)
    end_reason: Mapped[str | None]
    run_id: Mapped[uuid.UUID | None]
    # Group format: the circle (one per mentor and program) every member's match is in.
    group_id: Mapped[uuid.UUID | None]
    # Peer format: two peers, each on either side of up to `capacity` pairs.
    peer: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class MatchingRun(Base):
    """A cohort run: queued, computed in the background, stored with its inputs' version."""

    __tablename__ = "matching_run"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID]
    program_id: Mapped[uuid.UUID]
    status: Mapped[str]  # pending | running | succeeded | failed
    objective: Mapped[str]
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    stage: Mapped[str | None]
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    inputs_version: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    total_score: Mapped[float | None] = mapped_column(Double)
    matched_count: Mapped[int | None]
    proposals: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    unmatched: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    warnings: Mapped[list[str]] = mapped_column(JSONB, default=list)
    timings: Mapped[dict[str, float]] = mapped_column(JSONB, default=dict)
    error: Mapped[str | None]
    attempts: Mapped[int] = mapped_column(default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    applied: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
