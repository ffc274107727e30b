"""The AsyncAPI 3 document of every topic and event type, generated from the registered
models (never written by hand): the gateway serves it at `/asyncapi.json`."""

from typing import Any

from pydantic.json_schema import models_json_schema

from shared.events.envelope import SPEC_VERSION, CloudEvent, EventData, event_models
from shared.events.topics import Topic

ASYNCAPI_VERSION = "3.0.0"
REF = "#/components/schemas/{model}"
CONTENT_TYPE = "application/cloudevents+json"


def _first_line(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n", 1)[0].split())


def _channel_id(topic: str) -> str:
    return topic.removeprefix("mentorbus.").replace(".", "_")


def _envelope(model: type[EventData], envelope_schema: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvent envelope's schema with `type` fixed and `data` this model's."""
    properties = dict(envelope_schema["properties"])
    properties["specversion"] = {**properties["specversion"], "const": SPEC_VERSION}
    properties["type"] = {"type": "string", "const": model.event_type}
    properties["subject"] = {"type": "string", "description": "The aggregate id (the Kafka key)"}
    properties["orgid"] = {"type": "string", "description": "The organization (tenant) id"}
    properties["data"] = {"$ref": REF.format(model=model.__name__)}
    return {
        "type": "object",
        "required": sorted({*envelope_schema.get("required", []), "id", "type", "time"}),
        "properties": properties,
    }


def asyncapi_document(version: str = "1.0.0") -> dict[str, Any]:
    """Every topic (a channel), every event type (a message with its JSON Schema), and the
    dead-letter topics, from `shared.events`' registry."""
    models = event_models()
    keyed, definitions = models_json_schema(
        [(m, "serialization") for m in models], ref_template=REF
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    for model in models:
        schemas.setdefault(model.__name__, keyed[(model, "serialization")])
    envelope_schema = CloudEvent.model_json_schema(mode="serialization")

    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in Topic:
        channel_id = _channel_id(topic.value)
        on_topic = [m for m in models if m.topic == topic.value]
        for model in on_topic:
            messages[model.__name__] = {
                "name": model.event_type,
                "title": model.event_type,
                "summary": _first_line(model.__doc__),
                "contentType": CONTENT_TYPE,
                "payload": _envelope(model, envelope_schema),
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": "the aggregate id"},
                        "bindingVersion": "0.5.0",
                    }
                },
            }
        channels[channel_id] = {
            "address": topic.value,
            "title": topic.value,
            "description": f"Events of one aggregate kind, keyed by aggregate id ({topic.value}).",
            "messages": {
                m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in on_topic
            },
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Mentorbus publishes to {topic.value}",
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{m.__name__}"} for m in on_topic
            ],
        }

    messages["DeadLetter"] = {
        "name": "dead-letter",
        "title": "A record a consumer group could not handle",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "required": ["error", "topic", "partition", "offset", "key", "value"],
            "properties": {
                "error": {"type": "string"},
                "topic": {"type": "string", "description": "where the record was read"},
                "partition": {"type": "integer"},
                "offset": {"type": "integer"},
                "key": {"type": "string"},
                "value": {"type": "string", "description": "the record as received"},
            },
        },
    }
    channels["dead_letters"] = {
        "address": "mentorbus.dlq.{group}",
        "title": "Dead letters of a consumer group",
        "description": "Replay with `python -m shared.dlq` (see the README).",
        "parameters": {"group": {"description": "The consumer group, e.g. mentorbus.matching"}},
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    operations["dead_letter"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/dead_letters"},
        "summary": "A consumer parks an event it cannot handle",
        "messages": [{"$ref": "#/channels/dead_letters/messages/DeadLetter"}],
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Mentorbus events",
            "version": version,
            "description": (
                "Every event Mentorbus publishes: CloudEvents 1.0 in JSON structured mode with "
                "an `orgid` extension, one topic per aggregate, keyed by aggregate id. "
                "Webhooks (`/v1/webhooks`) deliver the same envelopes, signed per Standard "
                "Webhooks. A `.v1` type only ever gains optional fields."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The broker named by MENTORBUS_KAFKA_BOOTSTRAP_SERVERS",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
