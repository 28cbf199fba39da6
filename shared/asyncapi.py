"""The event catalogue: FastStream's AsyncAPI document of a service's broker, and its route.

The document is generated from the subscribers the service registered, so it cannot drift
from the code; docs/asyncapi/<service>.yaml holds the committed copy (`refdesk asyncapi`).
The subscribers take raw bytes (so a poison message can be dead-lettered), which FastStream
0.7.8 renders as a binary or an empty payload depending on import order; every refdesk topic
carries structured CloudEvents, so each message's payload is set to that envelope's schema
(shared.events.CloudEvent), which is both deterministic and what a reader needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from shared.events import AnyEvent

YAML = "application/yaml"


def document(broker: KafkaBroker, *, service: str, version: str = "0.1.0") -> str:
    """The AsyncAPI 3.0 document (YAML) of one service's broker."""
    spec = AsyncAPI(
        broker,
        title=f"refdesk {service}",
        version=version,
        description=f"Topics the refdesk {service} service consumes.",
    )
    doc: dict[str, Any] = spec.to_specification().to_jsonable()
    envelope = AnyEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = {"CloudEvent": {**envelope, "title": "CloudEvent"}}
    schemas.update(envelope.pop("$defs", {}))
    schemas["CloudEvent"].pop("$defs", None)
    components = doc.setdefault("components", {})
    for message in components.get("messages", {}).values():
        message["payload"] = {"$ref": "#/components/schemas/CloudEvent"}
        message["contentType"] = "application/cloudevents+json"
    components["schemas"] = schemas
    for part in (doc, components):  # FastStream's order varies from run to run
        for key in ("channels", "operations", "messages"):
            if key in part:
                part[key] = dict(sorted(part[key].items()))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def asyncapi_router(broker_of: Callable[[], KafkaBroker | None], *, service: str) -> APIRouter:
    """GET /asyncapi.yaml: the service's event catalogue, generated from its subscribers."""
    router = APIRouter(tags=["operations"])

    @router.get(
        "/asyncapi.yaml",
        summary="AsyncAPI document of the topics this service consumes",
        response_class=Response,
        responses={200: {"content": {YAML: {}}}, 503: {}},
    )
    async def asyncapi() -> Response:
        broker = broker_of()
        if broker is None:
            raise HTTPException(503, "the broker is not built yet")
        return Response(document(broker, service=service), media_type=YAML)

    return router
