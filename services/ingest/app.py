"""The ingest service: wiring of settings, broker, store and the webhook routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest.admin_api import build_admin_router
from services.ingest.replies import CARE_KINDS, recipient_binding, sent_entry
from services.ingest.routes import EMAIL_PATHS, build_router
from services.ingest.service import SOURCE, Ingest
from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore
from shared.asyncapi import asyncapi_router, declare_published
from shared.consumer import Decoded, Guard, batch_subscriber, stated_type
from shared.db import create_engine, migrate, ping
from shared.events import (
    TYPE_OF,
    Channel,
    ContactBlocked,
    ContactUnblocked,
    ConversationClosed,
    ConversationErased,
    InteractionReceived,
    NotificationRequested,
)
from shared.http import SecurityHeaders, install_problem_handlers, ops_router
from shared.kafka import build_broker, ensure_topics
from shared.lag import LagExporter
from shared.limits import BodyLimit
from shared.logs import REPEATING, configure_logging
from shared.service import serve
from shared.topics import DESK, INTERACTIONS, NOTIFICATIONS, SMS_REPORTS

log = logging.getLogger(__name__)

TOPICS = (INTERACTIONS.name, NOTIFICATIONS.name, DESK.name)
"""What ingest consumes (closes, the emails refdesk sends patrons, erasures, blocks): its
subscriber and the lag it exports read this one tuple, so neither can leave a topic out."""


_TEXT_TYPE = TYPE_OF[InteractionReceived]
_TEXT_KEY = b"sms-"


def _a_text(record: ConsumerRecord[Any, Any]) -> bool:
    """A patron's text, by its type and its conversation's key (ingest names every text thread
    "sms-..."): decoded, where every other interaction is passed over undecoded, so a rewind
    rebuilds the numbers' threads (`IngestStore.replay_sms`)."""
    key = record.key if isinstance(record.key, bytes) else str(record.key or "").encode()
    return key.startswith(_TEXT_KEY) and stated_type(record) == _TEXT_TYPE


def subscribe(broker: KafkaBroker, store: IngestStore, settings: IngestSettings) -> None:
    """Closed SMS tickets end their thread: the number's next text opens a new conversation
    (not a crisis's: `IngestStore.mark_crisis`). Contacts staff block or unblock at the desk
    go on or off the blocklist.
    Emails refdesk is asked to send a patron are remembered by Message-ID, bound to the
    patron's address, so a reply naming only that id joins its conversation, and the address
    is remembered as one of the conversation's, so a reply with its ticket tag does (`replies`)."""
    guard = Guard(broker, group=settings.ingest_group, source=SOURCE)
    wanted = frozenset(
        {
            TYPE_OF[ConversationClosed],
            TYPE_OF[NotificationRequested],
            TYPE_OF[ConversationErased],
            TYPE_OF[ContactBlocked],
            TYPE_OF[ContactUnblocked],
        }
    )

    async def dispatch(items: Sequence[Decoded]) -> None:
        # texts read back (a rewind after a restore): each number's thread, before the closes
        await store.replay_sms(
            [
                (data.patron.contact, data.conversation_id, data.received_at)
                for _event, data in items
                if isinstance(data, InteractionReceived)
                and data.channel is Channel.SMS
                and data.patron.contact
                and data.automatic is None
            ]
        )
        commands = [data for _event, data in items if isinstance(data, NotificationRequested)]
        sent = [entry for command in commands if (entry := sent_entry(command))]
        parties = [binding for command in commands if (binding := recipient_binding(command))]
        erased = [
            data.conversation_id for _e, data in items if isinstance(data, ConversationErased)
        ]
        crises = {command.conversation_id for command in commands if command.kind in CARE_KINDS}
        # blocks made at the desk, in the order staff made them (a block and its lifting may
        # share a batch)
        for _event, data in items:
            if isinstance(data, ContactBlocked):
                await store.block(data.contact, reason=data.reason, added_by=data.staff_id)
            elif isinstance(data, ContactUnblocked):
                await store.unblock(data.contact)
        await asyncio.gather(
            *(
                store.close_conversation(data.conversation_id)
                for _event, data in items
                if isinstance(data, ConversationClosed)
            ),
            *([store.remember(*sent, bindings=parties)] if sent else []),
            *([store.mark_crisis(crises)] if crises else []),
            *([store.forget_conversations(erased)] if erased else []),
        )

    # One poll batch at a time, committed once its closes and sent ids are written. refdesk's
    # producers name the type in a header, so the interactions themselves are passed over
    # undecoded; the broker holds a fetch until 64 KiB or 500 ms have gathered (a close may
    # wait that long).
    @batch_subscriber(
        broker,
        *TOPICS,
        group_id=settings.ingest_group,
        max_records=500,
        wait_ms=100,
        fetch_min_bytes=64 * 1024,
        fetch_max_wait_ms=500,
    )
    async def on_interactions(msg: KafkaMessage) -> None:
        await guard.batch(msg, dispatch, types=wanted, also=_a_text)


class BodyLimits:
    """The request body limits (shared.limits.BodyLimit: 413 before a body is read, 400 for JSON
    nested too deep, 408 for a body that does not arrive in time): REFDESK_MAX_BODY_BYTES and
    REFDESK_BODY_READ_TIMEOUT_S, and REFDESK_INGEST_MAX_EMAIL_BODY_BYTES and
    REFDESK_INGEST_EMAIL_BODY_READ_TIMEOUT_S on the email endpoints, whose bodies carry a whole
    email with its files."""

    def __init__(self, app: ASGIApp, *, settings: IngestSettings) -> None:
        self.small = BodyLimit(
            app, limit=settings.max_body_bytes, read_timeout_s=settings.body_read_timeout_s
        )
        self.email = BodyLimit(
            app,
            limit=settings.ingest_max_email_body_bytes,
            read_timeout_s=settings.ingest_email_body_read_timeout_s,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
        if root and path.startswith(root):  # the path the routes match (behind a prefix)
            path = path[len(root) :]
        chosen = self.email if path.rstrip("/") in EMAIL_PATHS else self.small
        await chosen(scope, receive, send)


def mount(app: FastAPI, *, ingest: Ingest, store: IngestStore, settings: IngestSettings) -> None:
    """The webhook and admin routes, with their body limits and the security headers."""
    app.include_router(build_router(ingest, settings))
    app.include_router(build_admin_router(store, settings))
    app.add_middleware(BodyLimits, settings=settings)
    app.add_middleware(SecurityHeaders)


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
            log.warning(
                "broker not reachable yet", extra={"error": type(exc).__name__, REPEATING: True}
            )
            with contextlib.suppress(Exception):
                await broker.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


def create_app(settings: IngestSettings) -> FastAPI:
    """The ingest FastAPI app."""
    broker = build_broker(settings, client_id="ingest")
    declare_published(broker, INTERACTIONS, SMS_REPORTS)
    engine = create_engine(settings.db_url("ingest"))
    store = IngestStore(
        engine,
        ttl=timedelta(days=settings.dedupe_ttl_days),
        blocklist_refresh_s=settings.blocklist_refresh_s,
        thread_retention=timedelta(days=settings.transcript_retention_days),
        wait_s=settings.store_timeout_s,
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
        lag = LagExporter(settings.kafka_bootstrap, {settings.ingest_group: list(TOPICS)}).start()
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

    # Providers are answered where they post, with or without a trailing slash, never
    # redirected (a redirect names the address ingest sees behind its proxy).
    app = FastAPI(
        title="refdesk ingest",
        version="0.1.0",
        lifespan=lifespan,
        description="Chat, SMS and email webhooks into refdesk's Kafka topics.",
        redirect_slashes=False,
    )
    install_problem_handlers(app)

    async def ready() -> dict[str, bool]:
        kafka = ingest.connected and await broker.ping(2.0)
        database = await ping(engine) and await store.ping()  # the hot path's own threads too
        return {"kafka": kafka, "database": database}

    app.include_router(ops_router(ready))
    app.include_router(asyncapi_router(lambda: broker, service="ingest"))
    mount(app, ingest=ingest, store=store, settings=settings)
    app.state.ingest = ingest
    return app


def main() -> None:
    """Run ingest until SIGTERM."""
    settings = IngestSettings()
    configure_logging("ingest", settings.log_level)
    serve(create_app(settings), settings, port=settings.ingest_port)
