"""Feedback tables (schema in migrations/)."""

import uuid
from datetime import datetime

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
