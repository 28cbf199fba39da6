"""The event catalogue: FastStream's AsyncAPI document of a service's broker, and its route.

The document is generated from the subscribers the service registered, so it cannot drift
from the code; docs/asyncapi/<service>.yaml holds the committed copy (`refdesk asyncapi`).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

YAML = "application/yaml"


def document(broker: KafkaBroker, *, service: str, version: str = "0.1.0") -> str:
    """The AsyncAPI 3.0 document (YAML) of one service's broker."""
    spec = AsyncAPI(broker, title=f"refdesk {service}", version=version,
                    description=f"Topics the refdesk {service} service consumes.")
    return spec.to_specification().to_yaml()


def asyncapi_router(broker_of: Callable[[], KafkaBroker | None], *, service: str) -> APIRouter:
    """GET /asyncapi.yaml: the service's event catalogue, generated from its subscribers."""
    router = APIRouter(tags=["operations"])

    @router.get("/asyncapi.yaml", summary="AsyncAPI document of the topics this service consumes",
                response_class=Response, responses={200: {"content": {YAML: {}}}, 503: {}})
    async def asyncapi() -> Response:
        broker = broker_of()
        if broker is None:
            raise HTTPException(503, "the broker is not built yet")
        return Response(document(broker, service=service), media_type=YAML)

    return router
