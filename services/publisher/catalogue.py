"""The publisher's event catalogue: its AsyncAPI document, with one typed message per event type.

shared.asyncapi renders what FastStream generates from the subscribers, where each topic has a
single message whose payload is the generic CloudEvents envelope (`data: object`). Here each
channel instead lists the event types its topic carries, each message's payload being the
whole envelope of that type: `type` fixed to its name and `data` the event's own schema. The
public types' payloads are the schemas of docs/schemas/ (services.publisher.schemas).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from fastapi import APIRouter
from fastapi.responses import Response
from faststream.kafka import KafkaBroker

from services.publisher.schemas import envelope_schema
from shared.asyncapi import YAML
from shared.asyncapi import document as generic_document
from shared.events import (
    EVENT_TYPES,
    PUBLIC_EVENT_TYPES,
    TYPE_OF,
    ConversationClosed,
    ConversationTransferred,
    InteractionReceived,
    PresenceChanged,
    RoutingDecided,
)
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING

SERVICE = "publisher"
SCHEMAS = "#/components/schemas/"
CARRIED: dict[str, list[str]] = {
    INTERACTIONS.name: [
        TYPE_OF[m] for m in (InteractionReceived, ConversationClosed, ConversationTransferred)
    ],
    ROUTING.name: [TYPE_OF[RoutingDecided]],
    PRESENCE.name: [TYPE_OF[PresenceChanged]],
    PUBLIC.name: sorted(PUBLIC_EVENT_TYPES),
}
"""Topic -> the event types on it that the publisher reads (or, for refdesk.public, writes)."""


def message_name(event_type: str) -> str:
    """A message's key in the document: its model's name (InteractionReceived, ...)."""
    return EVENT_TYPES[event_type].__name__


def typed(doc: dict[str, Any], carried: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The document with each carried topic's generic message replaced by one per event type."""
    components = doc.setdefault("components", {})
    messages: dict[str, Any] = components.setdefault("messages", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for key, channel in doc.get("channels", {}).items():
        types = carried.get(channel["address"])
        if not types:
            continue
        for ref in channel.get("messages", {}).values():
            messages.pop(ref["$ref"].rsplit("/", 1)[-1], None)
        channel["messages"] = {}
        for event_type in types:
            name = message_name(event_type)
            channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
            messages[name] = message(event_type, name)
            add_schema(schemas, f"{name}Event", event_type)
        for operation in doc.get("operations", {}).values():
            if operation["channel"]["$ref"] == f"#/channels/{key}":
                operation["messages"] = [
                    {"$ref": f"#/channels/{key}/messages/{message_name(t)}"} for t in types
                ]
    if not any(SCHEMAS + "CloudEvent" in yaml.safe_dump(m) for m in messages.values()):
        schemas.pop("CloudEvent", None)
    components["messages"] = dict(sorted(messages.items()))
    components["schemas"] = dict(sorted(schemas.items()))
    return doc


def message(event_type: str, name: str) -> dict[str, Any]:
    """The AsyncAPI message of one event type."""
    summary = (EVENT_TYPES[event_type].__doc__ or "").strip().splitlines()
    found: dict[str, Any] = {"name": event_type, "title": name}
    if summary:
        found["summary"] = summary[0]
    found["contentType"] = "application/cloudevents+json"
    found["payload"] = {"$ref": f"{SCHEMAS}{name}Event"}
    return found


def add_schema(schemas: dict[str, Any], name: str, event_type: str) -> None:
    """Put an event type's envelope schema, and the models it uses, into components.schemas."""
    schema = envelope_schema(event_type, ref_template=SCHEMAS + "{model}")
    for model, definition in schema.pop("$defs", {}).items():
        if schemas.setdefault(model, definition) != definition:
            raise ValueError(f"two different models are named {model}")
    schemas[name] = schema


def document(broker: KafkaBroker) -> str:
    """The publisher's AsyncAPI 3.0 document (YAML), typed by event type."""
    doc = yaml.safe_load(generic_document(broker, service=SERVICE))
    return yaml.safe_dump(typed(doc, CARRIED), sort_keys=False, allow_unicode=True)


def asyncapi_router(broker: KafkaBroker) -> APIRouter:
    """GET /asyncapi.yaml: the publisher's event catalogue, generated from its subscribers."""
    router = APIRouter(tags=["operations"])

    @router.get(
        "/asyncapi.yaml",
        summary="AsyncAPI document of the topics the publisher reads and writes",
        response_class=Response,
        responses={200: {"content": {YAML: {}}}},
    )
    async def asyncapi() -> Response:
        return Response(document(broker), media_type=YAML)

    return router
