"""CloudEvents 1.0 envelope (JSON structured mode) and the registry of event types.

Each event type is a frozen pydantic model declaring its versioned `type`, its topic and
which field is the aggregate id. A `.v1` model only ever gains optional fields; a breaking
change is a new `.v2` class beside it.
"""

import uuid
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from shared.db import utcnow

SPEC_VERSION = "1.0"
TYPE_PREFIX = "mentorbus."


class EventData(BaseModel):
    """Base of every event's `data`: immutable, ignores fields newer producers add."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    topic: ClassVar[str]

    def aggregate_id(self) -> str:
        """The id the event is keyed and ordered by (the CloudEvents `subject`)."""
        raise NotImplementedError


class CloudEvent(BaseModel):
    """The wire envelope every Mentorbus event travels in."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: str = SPEC_VERSION
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    source: str
    type: str
    time: datetime = Field(default_factory=utcnow)
    subject: str
    datacontenttype: str = "application/json"
    orgid: str
    data: dict[str, Any]


class UnknownEventType(LookupError):
    """An envelope whose `type` no model is registered for."""


_REGISTRY: dict[str, type[EventData]] = {}

E = TypeVar("E", bound=type[EventData])


def register(model: E) -> E:
    """Class decorator: make an event model known by its `event_type`."""
    if model.event_type in _REGISTRY:
        raise ValueError(f"event type registered twice: {model.event_type}")
    _REGISTRY[model.event_type] = model
    return model


def event_model(event_type: str) -> type[EventData]:
    """The model registered for a `type`."""
    try:
        return _REGISTRY[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def event_models() -> list[type[EventData]]:
    """Every registered event model, ordered by type (import `shared.events` first)."""
    return [_REGISTRY[t] for t in sorted(_REGISTRY)]


def make_event(data: EventData, *, source: str, orgid: uuid.UUID | str) -> CloudEvent:
    """Wrap typed data in a new envelope."""
    return CloudEvent(
        source=source,
        type=data.event_type,
        subject=data.aggregate_id(),
        orgid=str(orgid),
        data=data.model_dump(mode="json"),
    )


def parse_event(raw: bytes | str) -> tuple[CloudEvent, EventData]:
    """Decode an envelope and its typed data; raises on anything invalid."""
    envelope = CloudEvent.model_validate_json(raw)
    if envelope.specversion != SPEC_VERSION:
        raise ValueError(f"unsupported specversion {envelope.specversion!r}")
    return envelope, event_model(envelope.type).model_validate(envelope.data)
