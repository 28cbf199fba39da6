"""The router service: wiring of settings, broker, database, policy and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, Field

from services.router.handlers import HANDLERS, RouterDeps
from services.router.metrics import DESK_OPEN
from services.router.policy.engine import Decision, DecisionInput
from services.router.policy.holder import PolicyHolder
from services.router.presence import PresenceView
from services.router.settings import RouterSettings
from shared.asyncapi import asyncapi_router
from shared.consumer import Guard, decode
from shared.db import create_engine, migrate, ping
from shared.events import AnyEvent, Channel, PatronRole, PresenceChanged
from shared.http import install_problem_handlers, ops_router
from shared.kafka import build_broker, ensure_topics
from shared.lag import LagExporter
from shared.logs import configure_logging
from shared.service import serve
from shared.topics import INTERACTIONS, PRESENCE


class ExplainRequest(BaseModel):
    channel: Channel
    text: str = Field(min_length=1, max_length=20_000)
    patron_role: PatronRole = PatronRole.UNKNOWN
    received_at: datetime | None = None
    online: list[str] | None = Field(None, description="departments with staff Online; absent: all")

    model_config = {"json_schema_extra": {"examples": [
        {"channel": "chat", "text": "How do I cite a government report in APA 7?"}]}}


def subscribe(broker: KafkaBroker, deps: RouterDeps, settings: RouterSettings) -> None:
    """Register the router's subscribers, each with an explicit ack policy."""
    guard = Guard(broker, group=settings.router_group, source="refdesk/router")

    async def dispatch(event: AnyEvent, data: BaseModel) -> None:
        handler = HANDLERS.get(type(data))
        if handler is not None:
            await handler(deps, event, data)

    @broker.subscriber(
        INTERACTIONS.name, group_id=settings.router_group, auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR, max_poll_records=50,
    )
    async def on_interactions(msg: KafkaMessage) -> None:
        # raw bytes (msg.body): a `body: bytes` parameter fails outside the Guard on a JSON
        # record without our content-type header, and NACK_ON_ERROR would redeliver it forever
        await guard(msg.body, msg, dispatch)

    # Every router instance reads the whole compacted presence topic (no group): each needs
    # the full view, and it is rebuilt from the topic at start, so nothing is committed.
    @broker.subscriber(PRESENCE.name, auto_offset_reset="earliest", ack_policy=AckPolicy.ACK_FIRST)
    async def on_presence(msg: KafkaMessage) -> None:
        try:
            _, data = decode(msg.body)
        except Exception:
            return  # a broken presence record cannot change the view; the status service owns it
        if isinstance(data, PresenceChanged):
            deps.presence.apply(data)


def create_app(settings: RouterSettings) -> FastAPI:
    """The router's FastAPI app; the broker starts and stops with it."""
    broker = build_broker(settings, client_id="router")
    engine = create_engine(settings.db_url("router"))
    holder = PolicyHolder(settings.policy_file)
    deps = RouterDeps(broker=broker, policies=holder, presence=PresenceView(),
                      engine=engine)
    subscribe(broker, deps, settings)
    DESK_OPEN.set_function(lambda: float(holder.current.is_open(datetime.now(UTC))))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate(engine, "router")
        await ensure_topics(settings)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, holder.reload)
        watcher = asyncio.create_task(holder.watch(settings.policy_watch_interval_s))
        await broker.start()
        lag = LagExporter(settings.kafka_bootstrap,
                          {settings.router_group: [INTERACTIONS.name]}).start()
        try:
            yield
        finally:
            await lag.stop()
            watcher.cancel()
            await broker.stop()
            await engine.dispose()

    app = FastAPI(title="refdesk router", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)

    async def ready() -> dict[str, bool]:
        return {"kafka": await broker.ping(2.0), "database": await ping(engine)}

    app.include_router(ops_router(ready))
    app.include_router(asyncapi_router(lambda: broker, service="router"))

    @app.post("/explain", response_model=Decision, summary="Route one message without Kafka")
    async def explain(req: ExplainRequest) -> Any:
        online = frozenset(req.online) if req.online is not None else None
        inp = DecisionInput(channel=req.channel, text=req.text, patron_role=req.patron_role,
                            received_at=req.received_at or datetime.now(UTC))
        return holder.current.decide(inp, online=online)

    app.state.deps = deps
    return app


def main() -> None:
    """Run the router until SIGTERM."""
    settings = RouterSettings()
    configure_logging("router", settings.log_level)
    serve(create_app(settings), settings, port=settings.router_port)
