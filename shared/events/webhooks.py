"""Webhook subscription events (published by the gateway, which owns subscriptions)."""

import uuid
from datetime import datetime

from shared.events.envelope import EventData, register
from shared.events.topics import Topic


@register
class WebhookDisabledV1(EventData):
    """A webhook endpoint kept failing and was disabled; no more deliveries until an
    administrator enables it again (`PATCH /v1/webhooks/{id}` with `status: active`)."""

    event_type = "mentorbus.webhook.disabled.v1"
    topic = Topic.WEBHOOKS

    webhook_id: uuid.UUID
    url: str
    reason: str
    consecutive_failures: int
    failing_since: datetime | None = None
    disabled_at: datetime

    def aggregate_id(self) -> str:
        return str(self.webhook_id)
