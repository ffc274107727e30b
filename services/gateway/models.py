"""Gateway tables (schema in migrations/)."""

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, DateTime, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TimestampedMixin, service_metadata


class Base(DeclarativeBase):
    """This service's tables (its own database, its own metadata)."""

    metadata = service_metadata()


class ApiKey(TimestampedMixin, Base):
    """An organization's API key; the secret itself is never stored."""

    __tablename__ = "api_key"

    org_id: Mapped[uuid.UUID]
    name: Mapped[str]
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String), default=list)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
