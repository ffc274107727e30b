"""Matching tables (schema in migrations/)."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, utcnow


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
