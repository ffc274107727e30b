"""Webhook wire models."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventTypes = list[str]


class WebhookIn(BaseModel):
    """`POST /v1/webhooks`: where to post, and which event types (see `/asyncapi.json`)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="https URL of the receiver")
    event_types: EventTypes = Field(
        min_length=1, max_length=200, description="e.g. mentorbus.match.created.v1"
    )
    description: str = Field(default="", max_length=2000)


class WebhookPatch(BaseModel):
    """`PATCH /v1/webhooks/{id}`: change any of these; `status: active` re-enables a
    disabled webhook (its failure count starts again)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    event_types: EventTypes | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    status: Literal["active", "disabled"] | None = None


class WebhookOut(BaseModel):
    """A webhook subscription (without its secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    status: Literal["active", "disabled"]
    disabled_reason: str | None
    consecutive_failures: int
    previous_secret_expires_at: datetime | None = Field(
        description="Until then, deliveries are also signed with the previous secret"
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    """A new webhook: `secret` (`whsec_...`) is shown only in this response."""

    secret: str


class SecretRotationIn(BaseModel):
    """`POST /v1/webhooks/{id}/rotate-secret`: how long the old secret stays valid."""

    model_config = ConfigDict(extra="forbid")

    grace_period_seconds: int | None = Field(
        default=None, ge=0, le=7 * 24 * 3600, description="default: 24 hours"
    )


class SecretRotated(BaseModel):
    """The new secret, shown only here; the previous one stays valid until the time given."""

    secret: str
    previous_secret_expires_at: datetime | None


class DeliveryOut(BaseModel):
    """One event's delivery to one webhook."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When the next attempt is due")
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
