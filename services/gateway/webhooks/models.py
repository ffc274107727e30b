"""Webhook tables (schema in services/gateway/migrations/0003_webhooks.sql)."""

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, DateTime, FetchedValue, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.gateway.models import Base
from shared.db import TimestampedMixin, utcnow


class Webhook(TimestampedMixin, Base):
    """An organization's subscription: where to post which event types."""

    __tablename__ = "webhook"

    org_id: Mapped[uuid.UUID]
    url: Mapped[str]
    description: Mapped[str] = mapped_column(default="")
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String))
    status: Mapped[str] = mapped_column(default="active")  # active | disabled
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None]


class WebhookDelivery(Base):
    """One event to post to one webhook, with its attempts so far."""

    __tablename__ = "webhook_delivery"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    webhook_id: Mapped[uuid.UUID]
    org_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str]
    aggregate_key: Mapped[str]
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(default="pending")  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(default=0)
    # None: the configured number of attempts; a redelivery on demand allows one more.
    attempt_limit: Mapped[int | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None]
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
