"""Profiles tables (schema in migrations/)."""

import uuid
from datetime import date
from typing import Any

from sqlalchemy import ARRAY, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, TimestampedMixin


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
    # Bumped on every real change: the ETag, and the order consumers apply changes in.
    version: Mapped[int] = mapped_column(default=1)
