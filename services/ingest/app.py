"""The ingest service: wiring of settings, broker, store and the webhook routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.ingest.admin_api import build_admin_router
from services.ingest.routes import build_router
from services.ingest.service import Ingest
from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore
from shared.asyncapi import asyncapi_router
from shared.consumer import Decoded, Guard, batch_subscriber
from shared.db import create_engine, migrate, ping
from shared.events import TYPE_OF, ConversationClosed
from shared.http import install_http_guards, install_problem_handlers, ops_router
from shared.kafka import build_broker, ensure_topics
from shared.lag import LagExporter
from shared.logs import configure_logging
from shared.service import serve
from shared.topics import INTERACTIONS

log = logging.getLogger(__name__)


def subscribe(broker: KafkaBroker, store: IngestStore, settings: IngestSettings) -> None:
    """Closed SMS tickets end their thread: the number's next text opens a new conversation."""
    guard = Guard(broker, group=settings.ingest_group, source="refdesk/ingest")
    closes = frozenset({TYPE_OF[ConversationClosed]})

    async def dispatch(items: Sequence[Decoded]) -> None:
        await asyncio.gather(
            *(
                store.close_conversation(data.conversation_id)
                for _event, data in items
                if isinstance(data, ConversationClosed)
            )
        )

    # One poll batch at a time, committed once its closes are written. refdesk's producers
    # name the type in a header, so the interactions themselves are passed over undecoded; the
    # broker holds a fetch until 64 KiB or 500 ms have gathered (a close may wait that long).
    @batch_subscriber(
        broker,
        INTERACTIONS.name,
        group_id=settings.ingest_group,
        max_records=500,
        wait_ms=100,
        fetch_min_bytes=64 * 1024,
        fetch_max_wait_ms=500,
    )
    async def on_interactions(msg: KafkaMessage) -> None:
        await guard.batch(msg, dispatch, types=closes)


async def _connect(broker: KafkaBroker, ingest: Ingest, settings: IngestSettings) -> None:
    """Connect to the broker, retrying: ingest answers 503 until it is connected."""
    delay = 0.5
    while True:
        try:
            await ensure_topics(settings)
            await broker.start()
            ingest.connected = True
            return
        except Exception as exc:
            log.warning("broker not reachable yet", extra={"error": type(exc).__name__})
            with contextlib.suppress(Exception):
                await broker.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


def create_app(settings: IngestSettings) -> FastAPI:
    """The ingest FastAPI app."""
    broker = build_broker(settings, client_id="ingest")
    engine = create_engine(settings.db_url("ingest"))
    store = IngestStore(
        engine,
        ttl=timedelta(days=settings.dedupe_ttl_days),
        blocklist_refresh_s=settings.blocklist_refresh_s,
    )
    ingest = Ingest(
        broker=broker,
        store=store,
        publish_timeout_s=settings.publish_timeout_s,
        sms_window=timedelta(hours=settings.sms_reply_window_h),
    )
    subscribe(broker, store, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate(engine, "ingest")
        await store.start()
        connector = asyncio.create_task(_connect(broker, ingest, settings))
        lag = LagExporter(
            settings.kafka_bootstrap, {settings.ingest_group: [INTERACTIONS.name]}
        ).start()
        try:
            yield
        finally:
            await lag.stop()
            connector.cancel()
            with contextlib.suppress(BaseException):
                await connector
            await ingest.close()
            await broker.stop()
            await store.close()
            await engine.dispose()

    app = FastAPI(
        title="refdesk ingest",
        version="0.1.0",
        lifespan=lifespan,
        description="Chat, SMS and email webhooks into refdesk's Kafka topics.",
    )
    install_problem_handlers(app)

    async def ready() -> dict[str, bool]:
        kafka = ingest.connected and await broker.ping(2.0)
        return {"kafka": kafka, "database": await ping(engine)}

    app.include_router(ops_router(ready))
    app.include_router(asyncapi_router(lambda: broker, service="ingest"))
    app.include_router(build_router(ingest, settings))
    app.include_router(build_admin_router(store, settings))

    install_http_guards(app, max_body_bytes=settings.max_body_bytes)
    app.state.ingest = ingest
    return app


def main() -> None:
    """Run ingest until SIGTERM."""
    settings = IngestSettings()
    configure_logging("ingest", settings.log_level)
    serve(create_app(settings), settings, port=settings.ingest_port)
