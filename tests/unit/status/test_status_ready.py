"""The status service's /readyz names its checks as the other four services do."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

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


async def test_with_the_broker_away_a_replica_with_its_database_stays_ready() -> None:
    """A balancer following /readyz took every status replica, and with them the console,
    offline for a broker outage, though the console reads the database and a staff action's
    events wait in the outbox (an outside review). The broker's state is still reported."""
    app = create_app(StatusSettings())

    class Away:
        async def ping(self, timeout: float) -> bool:
            return False

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
        engine = create_async_engine("sqlite+aiosqlite://")
        app.state.resources = SimpleNamespace(broker=Away(), engine=engine, extra={})
        try:
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
        finally:
            await engine.dispose()
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"kafka": False, "database": True}}
    assert 'refdesk_dependency_up{dependency="kafka"} 0.0' in metrics.text
