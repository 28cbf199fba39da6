"""Lifecycle of the publisher: the public stream projector, the webhook matcher and worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from services.publisher import admin_api, projector, webhooks
from services.publisher.deps import Resources
from services.publisher.egress import Egress
from services.publisher.settings import PublisherSettings
from services.publisher.webhooks import WebhookWorker
from shared.asyncapi import asyncapi_router, declare_published
from shared.clock import utcnow
from shared.db import create_engine, migrate, ping, session_factory
from shared.http import install_http_guards, install_problem_handlers, ops_router
from shared.kafka import build_broker, ensure_topics_when_reachable
from shared.lag import LagExporter
from shared.logs import configure_logging
from shared.service import serve
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING

log = logging.getLogger(__name__)
SERVICE = "publisher"


def create_app(settings: PublisherSettings) -> FastAPI:
    """The publisher's ASGI app; broker, database and worker start and stop with it."""
    broker = build_broker(settings, client_id="refdesk-publisher")
    declare_published(broker, PUBLIC)
    engine = create_engine(settings.db_url(SERVICE))
    sessions = session_factory(engine)
    # No redirects, no proxy or .netrc from the environment, and no kept-alive connections: each
    # delivery connects to the address egress checked for it, TLS verified against its host.
    http = httpx.AsyncClient(
        timeout=settings.webhook_timeout_s,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    egress = Egress(
        allow_http=settings.http_urls_allowed, allow_loopback=settings.webhook_allow_loopback
    )
    worker = WebhookWorker(settings=settings, sessions=sessions, http=http, egress=egress)
    projector.register(broker, settings, sessions)
    webhooks.register(broker, worker)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(engine, SERVICE)
        await ensure_topics_when_reachable(settings, exit_if_not=True)
        await broker.start()
        lag = LagExporter(
            settings.kafka_bootstrap,
            {
                settings.projector_group: [INTERACTIONS.name, ROUTING.name, PRESENCE.name],
                settings.webhook_group: [PUBLIC.name],
            },
        ).start()
        stopping = asyncio.Event()
        task = asyncio.create_task(worker.run(stopping))
        app.state.resources = Resources(
            settings=settings, sessions=sessions, clock=utcnow, wake=worker.notify, egress=egress
        )
        app.state.started = True
        try:
            yield
        finally:
            stopping.set()
            worker.wake.set()
            await asyncio.wait([task], timeout=settings.shutdown_timeout_s / 2)
            task.cancel()
            await lag.stop()
            await broker.stop()
            await http.aclose()
            await engine.dispose()

    app = FastAPI(title="refdesk publisher", version="0.1.0", lifespan=lifespan)

    async def ready() -> dict[str, bool]:
        if not getattr(app.state, "started", False):
            return {"kafka": False, "database": False}
        return {"kafka": bool(await broker.ping(2.0)), "database": await ping(engine)}

    install_problem_handlers(app)
    install_http_guards(app)
    admin_api.install_error_handler(app)
    app.include_router(ops_router(ready))
    app.include_router(asyncapi_router(lambda: broker, service=SERVICE))
    app.include_router(admin_api.router)
    app.state.worker = worker
    app.state.broker = broker
    return app


def main() -> None:
    """Build settings, log JSON lines, serve on the publisher port."""
    settings = PublisherSettings()
    configure_logging(SERVICE, settings.log_level)
    serve(create_app(settings), settings, port=settings.port)
