"""What the gateway consumes: every registered event type, for webhook deliveries."""

from services.gateway.webhooks.domain import record_deliveries, subscribed
from shared.consumer import Handler, Interest
from shared.events import EventData, event_models

# Every type: a webhook may subscribe to any of them (new types join on registration).
HANDLERS: dict[type[EventData], Handler] = dict.fromkeys(event_models(), record_deliveries)
# Most events have no subscriber: those are skipped unparsed, with no inbox row.
INTEREST: Interest = subscribed
