"""What the gateway consumes: nothing yet (webhook deliveries will consume events)."""

from shared.consumer import Handler
from shared.events import EventData

HANDLERS: dict[type[EventData], Handler] = {}
