"""The CloudEvents envelope and the event registry."""

import json
import uuid

import pytest
from pydantic import ValidationError

from shared.events import (
    PersonUpsertedV1,
    UnknownEventType,
    event_model,
    make_event,
    parse_event,
)


def person(version: int = 1) -> PersonUpsertedV1:
    return PersonUpsertedV1(person_id=uuid.uuid4(), external_id="E-1", version=version)


def test_envelope_round_trips_with_typed_data() -> None:
    org = uuid.uuid4()
    data = person()
    event = make_event(data, source="mentorbus/test", orgid=org)
    wire = event.model_dump_json()
    body = json.loads(wire)
    assert body["specversion"] == "1.0"
    assert body["type"] == "mentorbus.person.upserted.v1"
    assert body["subject"] == str(data.person_id)
    assert body["orgid"] == str(org)
    envelope, parsed = parse_event(wire)
    assert envelope.id == event.id
    assert parsed == data


def test_registry_knows_every_type_once() -> None:
    assert event_model("mentorbus.person.upserted.v1") is PersonUpsertedV1
    with pytest.raises(UnknownEventType):
        event_model("mentorbus.person.teleported.v1")


def test_newer_producers_may_add_fields() -> None:
    event = make_event(person(), source="s", orgid=uuid.uuid4())
    body = event.model_dump(mode="json")
    body["data"]["favourite_colour"] = "green"
    _, parsed = parse_event(json.dumps(body))
    assert isinstance(parsed, PersonUpsertedV1)


def test_invalid_envelopes_are_rejected() -> None:
    good = make_event(person(), source="s", orgid=uuid.uuid4()).model_dump(mode="json")
    with pytest.raises(ValidationError):
        parse_event(json.dumps({**good, "data": {"external_id": "E-1"}}))  # no person_id
    with pytest.raises(ValueError, match="specversion"):
        parse_event(json.dumps({**good, "specversion": "0.3"}))
    with pytest.raises(ValidationError):
        parse_event(b"not json")
