"""The router service: wiring of settings, broker, database, policy and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.router import routing
from services.router.conversations import forget_named
from services.router.explain import ExplainRequest
from services.router.handlers import RouterDeps, route_batch
from services.router.learned import LearnedModel, load_model
from services.router.metrics import DESK_OPEN
from services.router.policy.decision import Decision
from services.router.policy.holder import PolicyHolder
from services.router.presence import PresenceView
from services.router.settings import RouterSettings
from services.router.tables import processed
from shared.asyncapi import asyncapi_router, declare_published
from shared.clock import utcnow
from shared.consumer import Decoded, Guard, batch_subscriber, decode
from shared.db import (
    PURGE_PROCESSED_BATCH,
    create_engine,
    migrate,
    ping,
    processed_cutoff,
    purge_processed,
)
from shared.events import PresenceChanged
from shared.http import (
    BEARER_PROBLEMS,
    install_http_guards,
    install_problem_handlers,
    ops_router,
    require_bearer,
)
from shared.kafka import build_broker, ensure_topics_when_reachable
from shared.lag import LagExporter
from shared.logs import REPEATING, configure_logging
from shared.service import serve
from shared.syncdb import UnitRunner
from shared.topics import INTERACTIONS, NOTIFICATIONS, PRESENCE, ROUTING, retention_days_of

BATCH_RECORDS = 100
"""Most records one poll batch of refdesk.interactions holds (one lookup, one publish round
trip, one transaction and one offset commit per batch)."""
BATCH_WAIT_MS = 100
"""How long an idle poll waits for records before polling again (a record that arrives
meanwhile is returned at once: `shared.consumer.poll_without_pause`)."""


def subscribe(broker: KafkaBroker, deps: RouterDeps, settings: RouterSettings) -> None:
    """Register the router's subscribers, each with an explicit ack policy."""
    guard = Guard(broker, group=settings.router_group, source="refdesk/router")

    async def dispatch(items: Sequence[Decoded]) -> None:
        await route_batch(deps, items)

    # One poll batch at a time; its offsets are committed once, after route_batch returned
    # (decisions and commands acknowledged, processed ids committed). The Guard's decoder and
    # parser keep one malformed record from failing the batch outside the Guard.
    @batch_subscriber(
        broker,
        INTERACTIONS.name,
        group_id=settings.router_group,
        max_records=BATCH_RECORDS,
        wait_ms=BATCH_WAIT_MS,
    )
    async def on_interactions(msg: KafkaMessage) -> None:
        await guard.batch(msg, dispatch)

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


def load_learned(settings: RouterSettings) -> LearnedModel | None:
    """The learned net named by the settings (ModelError stops the start), or None when the
    variable is empty (the rules alone)."""
    path = settings.router_model_file
    return None if path is None or path == Path() else load_model(path)


log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0
"""How often processed interaction ids past the topic's retention are deleted."""


async def _purge_processed_periodically(db: UnitRunner, settings: RouterSettings) -> None:
    """Each hour, delete the processed interaction ids refdesk.interactions can no longer hold
    (its retention and a day), a batch at a time, and clear what the circulation emails of
    conversations first routed a transcripts' retention ago named (`forget_named`)."""
    days = retention_days_of([INTERACTIONS.name], raw_retention_days=settings.raw_retention_days)
    while True:
        try:
            before = processed_cutoff(datetime.now(UTC), retention_days=days)
            purge = functools.partial(purge_processed, table=processed, before=before)
            while await db(purge) >= PURGE_PROCESSED_BATCH:
                pass
            retained = datetime.now(UTC) - timedelta(days=settings.transcript_retention_days)
            await db(functools.partial(forget_named, before=retained))
        except Exception as exc:  # the next round tries again
            log.warning(
                "processed-id purge failed", extra={"error": type(exc).__name__, REPEATING: True}
            )
        await asyncio.sleep(PURGE_EVERY_S)


def create_app(settings: RouterSettings, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """The router's FastAPI app; the broker starts and stops with it (`clock`: now, when each
    decision is made)."""
    broker = build_broker(settings, client_id="router")
    declare_published(broker, ROUTING, NOTIFICATIONS)
    engine = create_engine(settings.db_url("router"))
    holder = PolicyHolder(settings.policy_file)
    model = load_learned(settings)
    db = UnitRunner(engine, name="router-db")
    deps = RouterDeps(
        broker=broker, policies=holder, presence=PresenceView(), db=db, model=model, clock=clock
    )
    subscribe(broker, deps, settings)
    DESK_OPEN.set_function(lambda: float(holder.current.is_open(datetime.now(UTC))))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate(engine, "router")
        await ensure_topics_when_reachable(settings, exit_if_not=True)
        loop = asyncio.get_running_loop()
        # not on the main thread (an embedded server) there is no SIGHUP reload: asyncio says
        # RuntimeError, uvloop ValueError; the policy file is still watched
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, holder.reload)
        watcher = asyncio.create_task(holder.watch(settings.policy_watch_interval_s))
        purger = asyncio.create_task(_purge_processed_periodically(db, settings))
        await broker.start()
        lag = LagExporter(
            settings.kafka_bootstrap, {settings.router_group: [INTERACTIONS.name]}
        ).start()
        try:
            yield
        finally:
            await lag.stop()
            watcher.cancel()
            purger.cancel()
            await broker.stop()
            db.close()
            await engine.dispose()

    app = FastAPI(title="refdesk router", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    install_http_guards(app)

    async def ready() -> dict[str, bool]:
        database = await ping(engine) and await db.ping()  # the hot path's own thread too
        return {"kafka": await broker.ping(2.0), "database": database}

    app.include_router(ops_router(ready))
    app.include_router(asyncapi_router(lambda: broker, service="router"))

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        require_bearer(authorization, settings.router_admin_token)

    # the token is a dependency, checked before the body is validated: without it the answer
    # is 401 whatever the body (it was 422, naming the fields a request should have)
    @app.post(
        "/explain",
        response_model=Decision,
        summary="Route one message without Kafka",
        responses=BEARER_PROBLEMS,
        dependencies=[Depends(admin)],
    )
    async def explain(req: ExplainRequest) -> Any:
        policy = holder.current
        inp, online = req.to_input(policy)
        return routing.decide(policy, model, inp, online=online)

    app.state.deps = deps
    return app


def main() -> None:
    """Run the router until SIGTERM."""
    settings = RouterSettings()
    configure_logging("router", settings.log_level)
    serve(create_app(settings), settings, port=settings.router_port)
