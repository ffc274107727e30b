"""Profiles tables (schema in migrations/)."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, DateTime, ForeignKey, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TimestampedMixin, service_metadata, utcnow


class Base(DeclarativeBase):
    """This service's tables (its own database, its own metadata)."""

    metadata = service_metadata()


class Organization(TimestampedMixin, Base):
    """A tenant: every other row belongs to exactly one."""

    __tablename__ = "organization"

    name: Mapped[str]


class Person(TimestampedMixin, Base):
    """An employee as the organization's HRIS describes them."""

    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("org_id", "external_id"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id"))
    external_id: Mapped[str]
    email: Mapped[str | None]
    given_name: Mapped[str | None]
    family_name: Mapped[str | None]
    display_name: Mapped[str | None]
    title: Mapped[str | None]
    department: Mapped[str | None]
    division: Mapped[str | None]
    cost_center: Mapped[str | None]
    location: Mapped[str | None]
    time_zone: Mapped[str | None]
    languages: Mapped[list[str]] = mapped_column(ARRAY(String), default=list)
    manager_external_id: Mapped[str | None]
    hire_date: Mapped[date | None]
    employment_status: Mapped[str] = mapped_column(default="active")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    job_level: Mapped[int | None]
    # When the current state took effect in the HRIS (older synced states only join
    # `employee_history`).
    effective_date: Mapped[date] = mapped_column(default=date.today)
    # Bumped on every real change: the ETag, and the order consumers apply changes in.
    version: Mapped[int] = mapped_column(default=1)
    # SCIM provisioning (see services/profiles/scim/__init__.py for the attribute mapping).
    user_name: Mapped[str | None]
    scim_external_id: Mapped[str | None]
    scim: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    scim_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Program(TimestampedMixin, Base):
    """A mentoring program and its matching criteria."""

    __tablename__ = "program"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id"))
    name: Mapped[str]
    description: Mapped[str | None]
    format: Mapped[str]
    status: Mapped[str]
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    max_mentees_per_mentor: Mapped[int]
    criteria: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    version: Mapped[int] = mapped_column(default=1)


class Enrollment(TimestampedMixin, Base):
    """A person taking part in a program as mentor, mentee or both."""

    __tablename__ = "enrollment"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("program.id"))
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"))
    employee_external_id: Mapped[str]
    role: Mapped[str]
    skills: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    goals: Mapped[list[str]] = mapped_column(ARRAY(String), default=list)
    languages: Mapped[list[str]] = mapped_column(ARRAY(String), default=list)
    capacity: Mapped[int | None]
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    bio: Mapped[str | None]
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(default="active")
    version: Mapped[int] = mapped_column(default=1)


class ScimGroup(TimestampedMixin, Base):
    """A SCIM group; `scim` keeps its representation (members are rows of their own)."""

    __tablename__ = "scim_group"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id"))
    display_name: Mapped[str]
    external_id: Mapped[str | None]
    scim: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    version: Mapped[int] = mapped_column(default=1)


class ScimGroupMember(Base):
    """A member (a person or another group) of a SCIM group."""

    __tablename__ = "scim_group_member"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scim_group.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    member_type: Mapped[str]


class EmployeeHistory(Base):
    """One dated state of an employee as synced from the HRIS (effective dating)."""

    __tablename__ = "employee_history"
    __table_args__ = (PrimaryKeyConstraint("person_id", "effective_date"),)

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"))
    effective_date: Mapped[date]
    org_id: Mapped[uuid.UUID]
    version: Mapped[int]
    employment_status: Mapped[str]
    job_level: Mapped[int | None]
    department: Mapped[str | None]
    division: Mapped[str | None]
    title: Mapped[str | None]
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
