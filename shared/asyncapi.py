"""The event catalogue: a service's AsyncAPI document, typed by event type, and its route.

FastStream generates the document from the subscribers and the publishers the service
registered (`declare_published`: its events go out through shared.kafka, so the declarations
only describe them), so its channels cannot drift from the code; each consumed topic's
dead-letter topic is added as a channel the service sends to (`with_dead_letters`);
docs/asyncapi/<service>.yaml holds the committed copy (`refdesk asyncapi`). The subscribers
take raw bytes (so a poison message can be dead-lettered), which FastStream 0.7.8 renders as a
binary or an empty payload depending on import order. So each channel's messages are replaced
by one per CloudEvent type its topic carries (`shared.topics`: `Topic.carries`), whose payload
is the whole envelope of that type: `type` fixed to its name and `data` the event's own schema
(shared.events).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic.json_schema import DEFAULT_REF_TEMPLATE

from shared.events import EVENT_TYPES, CloudEvent
from shared.topics import TOPICS, Topic, carried_types

YAML = "application/yaml"
CONTENT_TYPE = "application/cloudevents+json"
SCHEMAS = "#/components/schemas/"


def envelope_schema(event_type: str, *, ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
    """The JSON Schema of a whole CloudEvent (envelope and data) of one registered type; the
    models it uses are under `$defs`, referred to through `ref_template`. Enumerations are open
    (`OPEN_ENUM`), and the CloudEvents `specversion` is required, as the specification has it."""
    model = EVENT_TYPES[event_type]
    schema = CloudEvent[model].model_json_schema(ref_template=ref_template)  # type: ignore[valid-type]
    schema["properties"]["type"] = {"const": event_type, "title": "Type", "type": "string"}
    schema["title"] = event_type
    for definition in schema.get("$defs", {}).values():
        values = definition.pop("enum", None)
        if values is not None:
            definition["examples"] = values
            definition["description"] = OPEN_ENUM.format(values=", ".join(map(str, values)))
    schema["required"] = sorted({*schema.get("required", []), "specversion"})
    return schema


OPEN_ENUM = (
    "Known values today: {values}. A new value may be added without a new type version "
    "(docs/subscribing.md, versioning rule): handle one you do not know."
)
"""An enumeration as the documents state it: open. The versioning rule lets a new value come
without a new type version, and a subscriber validating against a closed `enum` refused such
an event (an operator's probe); the values known today are listed (`examples`)."""


def message_name(event_type: str) -> str:
    """A message's key in a document: its model's name (InteractionReceived, ...)."""
    return EVENT_TYPES[event_type].__name__


def message(event_type: str) -> dict[str, Any]:
    """The AsyncAPI message of one event type: named by the type, its payload the envelope."""
    name = message_name(event_type)
    summary = (EVENT_TYPES[event_type].__doc__ or "").strip().splitlines()
    found: dict[str, Any] = {"name": event_type, "title": name}
    if summary:
        found["summary"] = summary[0]
    found["contentType"] = CONTENT_TYPE
    found["payload"] = {"$ref": f"{SCHEMAS}{name}Event"}
    return found


def add_schema(schemas: dict[str, Any], event_type: str) -> None:
    """Put an event type's envelope schema, and the models it uses, into components.schemas."""
    schema = envelope_schema(event_type, ref_template=SCHEMAS + "{model}")
    for model, definition in schema.pop("$defs", {}).items():
        if schemas.setdefault(model, definition) != definition:
            raise ValueError(f"two different models are named {model}")
    schemas[f"{message_name(event_type)}Event"] = schema


def declare_published(broker: KafkaBroker, *topics: Topic) -> None:
    """Declare, for the service's AsyncAPI document, the topics it publishes events to."""
    for topic in topics:
        broker.publisher(
            topic.name,
            title=f"{topic.name}:Publish",
            description=f"Events this service publishes to {topic.name}.",
        )


def with_dead_letters(doc: dict[str, Any]) -> dict[str, Any]:
    """A channel and a send operation for the dead-letter topic of each topic the service
    consumes: a record it cannot handle goes there with its reason (shared.consumer)."""
    channels: dict[str, Any] = doc.setdefault("channels", {})
    operations: dict[str, Any] = doc.setdefault("operations", {})
    consumed = {
        channel["address"]: channel
        for op in operations.values()
        if op.get("action") == "receive"
        and (channel := channels[op["channel"]["$ref"].removeprefix("#/channels/")])
    }
    for topic in TOPICS:
        if topic.name not in consumed or not topic.dlq:
            continue
        key = f"{topic.dlq_name}:DeadLetter"
        channels[key] = {
            "address": topic.dlq_name,
            "servers": consumed[topic.name].get("servers", []),
            "description": f"Records of {topic.name} this service could not handle, each "
            "with its reason (dead letters).",
            "bindings": {"kafka": {"topic": topic.dlq_name, "bindingVersion": "0.4.0"}},
        }
        operations[key] = {"action": "send", "channel": {"$ref": f"#/channels/{key}"}}
    return doc


def typed(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with each channel's messages replaced by one per event type its topic
    carries, in every operation on it too; ValueError for a topic refdesk does not list."""
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    operations: dict[str, Any] = doc.get("operations", {})
    for key, channel in doc.get("channels", {}).items():
        address = channel["address"]
        try:
            types = carried_types(address)
        except KeyError:
            raise ValueError(f"{address}: a topic shared.topics does not list") from None
        channel["messages"] = {}
        for event_type in types:
            name = message_name(event_type)
            channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
            messages[name] = message(event_type)
            add_schema(schemas, event_type)
        for operation in operations.values():
            if operation["channel"]["$ref"] == f"#/channels/{key}":
                operation["messages"] = [
                    {"$ref": f"#/channels/{key}/messages/{message_name(t)}"} for t in types
                ]
    components = doc.setdefault("components", {})
    components["messages"] = dict(sorted(messages.items()))
    components["schemas"] = dict(sorted(schemas.items()))
    return doc


def document(broker: KafkaBroker, *, service: str, version: str = "0.1.0") -> str:
    """The AsyncAPI 3.0 document (YAML) of one service's broker, typed by event type."""
    spec = AsyncAPI(
        broker,
        title=f"refdesk {service}",
        version=version,
        description=f"Topics the refdesk {service} service consumes and publishes to.",
    )
    doc: dict[str, Any] = with_dead_letters(spec.to_specification().to_jsonable())
    for key in ("channels", "operations"):  # FastStream's order varies from run to run
        if key in doc:
            doc[key] = dict(sorted(doc[key].items()))
    return yaml.safe_dump(typed(doc), sort_keys=False, allow_unicode=True)


def asyncapi_router(broker_of: Callable[[], KafkaBroker | None], *, service: str) -> APIRouter:
    """GET /asyncapi.yaml: the service's event catalogue, generated from its subscribers."""
    router = APIRouter(tags=["operations"])

    @router.get(
        "/asyncapi.yaml",
        summary="AsyncAPI document of the topics this service consumes and publishes to",
        response_class=Response,
        responses={200: {"content": {YAML: {}}}, 503: {}},
    )
    async def asyncapi() -> Response:
        broker = broker_of()
        if broker is None:
            raise HTTPException(503, "the broker is not built yet")
        return Response(document(broker, service=service), media_type=YAML)

    return router
