"""The status service's /readyz names its checks as the other four services do."""

from __future__ import annotations

import httpx

from services.status.app import create_app
from services.status.settings import StatusSettings


async def test_readiness_names_kafka_and_the_database_like_every_service() -> None:
    """An operator's probe found status alone reporting "broker" where the others say "kafka"."""
    app = create_app(StatusSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
        ready = await client.get("/readyz")  # not started: nothing is ready
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"kafka": False, "database": False}
