"""Lifecycle of the status service: resources, broker, routes, background sweep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import sessionmaker

from services.status import admin_api, api, dashboard, queue_api, records_api, search_index
from services.status.console import blocked_page, live, pages, records_page, staff_page
from services.status.consumers import GROUP, TOPICS, register
from services.status.conversations import api as conversations_api
from services.status.conversations.macros import MacroBook
from services.status.conversations.transcript import nudge_after_commit
from services.status.errors import Unavailable
from services.status.periodic import republish_presence, run_forever
from services.status.resources import KafkaPublisher, Resources, broker_answers
from services.status.settings import StatusSettings
from services.status.staff import read_roster, seed_staff
from services.status.stats import routes as stats_routes
from shared.asyncapi import asyncapi_router
from shared.clock import utcnow
from shared.db import create_engine, migrate, ping, session_factory
from shared.http import install_http_guards, install_problem_handlers, ops_router
from shared.kafka import BrokerUnreachable, build_broker, ensure_topics_when_reachable
from shared.lag import LagExporter
from shared.logs import configure_logging
from shared.service import serve

log = logging.getLogger(__name__)
SERVICE = "status"


async def start_resources(settings: StatusSettings) -> Resources:
    """Migrate, seed, create topics, start the broker with its subscribers."""
    url = settings.db_url(SERVICE)
    # on PostgreSQL, as many connections kept as the console's live streams, the consumer and
    # the sweeps use at once: with SQLAlchemy's 5, a new TLS connection was opened and closed
    # every few seconds under a desk's load (an outside review saw 11 a minute)
    engine = create_engine(url, **({} if url.startswith("sqlite") else {"pool_size": DB_POOL}))
    await migrate(engine, SERVICE)
    sync = sessionmaker()
    sessions = session_factory(engine, sync=sync)
    if settings.seed_file is None:
        log.info("no staff roster file named: none loaded")
    else:
        # a roster that was named and cannot be read stops the start (RosterError)
        entries = read_roster(settings.seed_file, departments=MacroBook().departments())
        async with sessions() as session:
            added = await seed_staff(
                session=session,
                entries=entries,
                with_tokens=settings.env == "development",
                now=utcnow(),
            )
            await session.commit()
        log.info("staff roster loaded", extra={"file": settings.seed_file.name, "added": added})
    broker = build_broker(settings, client_id="refdesk-status")
    res = Resources(
        settings=settings,
        sessions=sessions,
        publisher=KafkaPublisher(broker, timeout_s=settings.publish_timeout_s),
        engine=engine,
        broker=broker,
    )
    nudge_after_commit(sync, lambda: res.changes_committed())
    res.extra[SEARCH_INDEX] = asyncio.create_task(_build_search_index(engine))
    register(broker, res)
    try:
        await ensure_topics_when_reachable(settings, wait_s=CONNECT_AT_START_S)
    except BrokerUnreachable:
        # the console serves from the database meanwhile (staff actions wait in the outbox):
        # a replica started or restarted during a broker outage had served nothing until the
        # broker was back, and exited every 120 s (an outside review)
        log.warning(
            "broker not reachable; serving the console and connecting in the background",
            extra={"bootstrap": settings.kafka_bootstrap},
        )
        res.extra[CONNECTING] = asyncio.create_task(_connect_later(settings, broker))
        return res
    await broker.start()
    return res


DB_POOL = 12
"""PostgreSQL connections a status replica keeps open (and up to 10 more at a peak)."""
CONNECT_AT_START_S = 15.0
"""How long a start waits for the broker before serving without it (the other services wait
START_WAIT_S and exit: they have nothing to do without it)."""
CONNECTING = "broker_connecting"
SEARCH_INDEX = "search_index"


async def _build_search_index(engine: AsyncEngine) -> None:
    """The transcript's text index, built concurrently beside the desk's work (`search_index`):
    the replica serves meanwhile, its searches reading every line until it is there."""
    try:
        await search_index.ensure(engine)
    except Exception as exc:  # searches still answer, slower; the next start tries again
        log.warning(
            "transcript search index not built; searches read every line",
            extra={"error": type(exc).__name__},
        )


async def _connect_later(settings: StatusSettings, broker: KafkaBroker) -> None:
    """Create the topics and start the broker's subscribers once it can be reached, however
    long that takes."""
    while True:
        try:
            await ensure_topics_when_reachable(settings)
            break
        except BrokerUnreachable:
            continue  # said every START_WAIT_S by ensure_topics_when_reachable's warnings
    await broker.start()
    log.info("broker connected", extra={"bootstrap": settings.kafka_bootstrap})


async def stop_resources(res: Resources) -> None:
    """Stop the broker (finishing the message in hand) and close the database."""
    for name in (CONNECTING, SEARCH_INDEX):
        task = res.extra.get(name)
        if isinstance(task, asyncio.Task) and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if res.broker is not None:
        await res.broker.stop()
    if res.engine is not None:
        await res.engine.dispose()


def create_app(settings: StatusSettings) -> FastAPI:
    """The status service's ASGI app; resources are built by its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        res = await start_resources(settings)
        app.state.resources = res
        with contextlib.suppress(Unavailable):  # the broker away: the sweep republishes it
            await republish_presence(res)
        sweeper = asyncio.create_task(run_forever(res))
        feed = live.LiveFeed(res.sessions, render=pages.live_rows(res))
        res.extra["live_feed"] = feed
        res.changes_committed = feed.nudge
        feeder = asyncio.create_task(feed.run())
        lag = LagExporter(settings.kafka_bootstrap, {GROUP: list(TOPICS)}).start()
        try:
            yield
        finally:
            await lag.stop()
            for task in (sweeper, feeder):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await stop_resources(res)

    # a trailing slash is redirected by the page handlers, relative: Starlette's own redirect
    # named the Host header's host (`dashboard.install_page_errors`)
    app = FastAPI(
        title="refdesk status", version="0.1.0", lifespan=lifespan, redirect_slashes=False
    )

    async def ready() -> dict[str, bool]:
        res: Resources | None = getattr(app.state, "resources", None)
        if res is None:
            return {"kafka": False, "database": False}
        # the ping the console's banner and the outbox read too (one per 5 s per replica)
        broker_ok = res.broker is not None and await broker_answers(res)
        database_ok = res.engine is not None and await ping(res.engine)
        return {"kafka": bool(broker_ok), "database": database_ok}

    install_problem_handlers(app)
    install_http_guards(app)
    api.install_error_handler(app)
    dashboard.install_page_errors(app)
    # ready with its database: the console reads it, and a staff action's events wait in the
    # outbox while the broker is away (a balancer following /readyz had taken every replica,
    # and the whole console, offline for a broker outage: an outside review); the broker's
    # state is still in the body and in refdesk_dependency_up
    app.include_router(ops_router(ready, required=("database",)))
    app.include_router(asyncapi_router(lambda: _broker_of(app), service="status"))
    app.include_router(api.router)
    app.include_router(queue_api.router)
    app.include_router(conversations_api.router)
    app.include_router(live.router)
    app.include_router(admin_api.router)
    app.include_router(records_api.router)
    app.include_router(dashboard.router)
    app.include_router(stats_routes.router)
    app.include_router(staff_page.router)
    app.include_router(records_page.router)
    app.include_router(blocked_page.router)
    app.mount("/static/status", StaticFiles(directory=dashboard.STATIC_DIR), name="status-static")
    return app


def _broker_of(app: FastAPI) -> KafkaBroker | None:
    res: Resources | None = getattr(app.state, "resources", None)
    return res.broker if res is not None else None


def main() -> None:
    """Build settings, log JSON lines, serve on the status port."""
    settings = StatusSettings()
    configure_logging(SERVICE, settings.log_level)
    if settings.seed_file is not None:  # refused before serving (exit 2), not inside start-up
        read_roster(settings.seed_file, departments=MacroBook().departments())
    serve(create_app(settings), settings, port=settings.port)
