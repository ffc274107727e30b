"""What the gateway consumes: every registered event type, for webhook deliveries."""

from services.gateway.webhooks.domain import record_deliveries
from shared.consumer import Handler
from shared.events import EventData, event_models

# Every type: a webhook may subscribe to any of them (new types join on registration).
HANDLERS: dict[type[EventData], Handler] = dict.fromkeys(event_models(), record_deliveries)
