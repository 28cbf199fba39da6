"""The notifier service: wiring of settings, broker, ledger, delivery lanes and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier import ledger
from services.notifier.chat import ChatSender, OutboxChatSender, WebhookChatSender
from services.notifier.delivery import Deliverer
from services.notifier.email_sender import SmtpSender, SmtpSettings
from services.notifier.errors import TemplateInvalid
from services.notifier.lanes import Lane
from services.notifier.metrics import LEDGER_PURGED, OLDEST_PENDING, OUTBOX_PURGED
from services.notifier.outcomes import BrokerPublisher
from services.notifier.outgoing import Adapters
from services.notifier.settings import DEV_TWILIO_TOKEN, NotifierSettings
from services.notifier.sms import (
    OutboxSmsSender,
    SmsSender,
    TwilioSmsSender,
    forget_outboxes,
    outbox_folders,
    purge_outboxes,
)
from services.notifier.template_check import check_templates
from shared.asyncapi import asyncapi_router
from shared.clock import utcnow, woken
from shared.consumer import Guard, PoisonMessage, batch_subscriber, decode
from shared.db import create_engine, migrate, ping, session_factory
from shared.events import (
    TYPE_OF,
    Channel,
    ConversationErased,
    NotificationDelivered,
    NotificationRequested,
)
from shared.http import install_http_guards, install_problem_handlers, ops_router
from shared.kafka import build_broker, ensure_topics_when_reachable
from shared.lag import LagExporter
from shared.logs import configure_logging
from shared.service import REFUSED_EXIT, serve
from shared.settings import secret_value
from shared.syncdb import UnitRunner
from shared.topics import DELIVERIES, DESK, NOTIFICATIONS, retention_days_of

log = logging.getLogger(__name__)


def build_adapters(settings: NotifierSettings, http: httpx.AsyncClient) -> Adapters:
    """The delivery adapters the settings ask for; the email lane's SMTP sessions are pooled."""
    smtp = SmtpSender(
        SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            username=settings.smtp_user,
            password=secret_value(settings.smtp_password),
            timeout=settings.smtp_timeout_s,
            send_timeout=settings.smtp_send_timeout_s,
            validate_certs=settings.smtp_validate_certs,
            ca_file=settings.smtp_ca_file,
        ),
        max_sessions=settings.notifier_lane_concurrency,
        idle_timeout_s=settings.smtp_idle_timeout_s,
    )
    sms: SmsSender
    if settings.sms_api_base_url:
        sms = TwilioSmsSender(
            settings.sms_api_base_url,
            settings.twilio_account_sid or "",
            # development: the same token ingest checks Twilio's signatures with
            secret_value(settings.twilio_auth_token) or DEV_TWILIO_TOKEN,
            settings.sms_from or "",
            http,
            status_callback=settings.sms_status_callback_url,
        )
    else:
        sms = OutboxSmsSender(outbox_folders(settings.run_dir)[1])
    chat: ChatSender
    chat_secrets = [
        plain
        for plain in map(
            secret_value, (settings.chat_api_secret, settings.chat_api_previous_secret)
        )
        if plain
    ]
    if settings.chat_api_url and chat_secrets:
        chat = WebhookChatSender(
            settings.chat_api_url, chat_secrets, http, timeout_s=settings.chat_api_timeout_s
        )
    else:
        chat = OutboxChatSender(outbox_folders(settings.run_dir)[0])
    return Adapters(email=smtp, sms=sms, chat=chat)


BATCH_RECORDS = 100
"""Most commands one poll batch holds: one ledger transaction and one offset commit each."""
BATCH_WAIT_MS = 100
"""How long an idle poll waits for records before polling again (a record that arrives
meanwhile is returned at once: `shared.consumer.poll_without_pause`)."""
RETRY_PAUSE_S = 1.0
"""Pause before a batch that failed transiently is redelivered."""


def decode_command(body: bytes) -> NotificationRequested | ConversationErased:
    """A notification command, or an erasure read from refdesk.desk; PoisonMessage (with the
    reason) for anything else."""
    _event, data = decode(body)
    if not isinstance(data, NotificationRequested | ConversationErased):
        raise PoisonMessage(f"not a notification command: {type(data).__name__}")
    return data


TOPICS = (NOTIFICATIONS.name, DESK.name)
"""What the notifier consumes: its subscriber and the lag it exports read this one tuple."""
WANTED = frozenset({TYPE_OF[NotificationRequested], TYPE_OF[ConversationErased]})
"""What the notifier reads: every record on refdesk.notifications, and of refdesk.desk's staff
actions only the erasures (the rest are passed over by their type header, undecoded)."""


def subscribe(broker: KafkaBroker, deliverer: Deliverer, settings: NotifierSettings) -> None:
    """Record each poll batch's commands in the ledger in one transaction; the batch's offsets
    are committed only after that commit.

    The rules are the `Guard`'s (shared/consumer.py): each poison record (including a valid
    event that is not a notification command) goes to the DLQ by itself with its reason; any
    other failure redelivers the whole batch after a pause, nothing of it committed.
    """
    guard = Guard(
        broker,
        group=settings.notifier_group,
        source="refdesk/notifier",
        retry_pause_s=RETRY_PAUSE_S,
    )

    # What the notifier publishes, declared for its AsyncAPI document (published through
    # shared.kafka like every event; see outcomes.py).
    broker.publisher(
        DELIVERIES.name,
        title=f"{DELIVERIES.name}:NotificationDelivered",
        description="The outcome of each notification command, once final: sent (with the "
        "text as delivered) or failed for good (with a short reason). Keyed by conversation.",
        schema=NotificationDelivered,
    )

    async def dispatch(items: list[NotificationRequested | ConversationErased]) -> None:
        commands = [item for item in items if isinstance(item, NotificationRequested)]
        for channel in await deliverer.record(commands):
            deliverer.wake.set(channel)
        erased = [item.conversation_id for item in items if isinstance(item, ConversationErased)]
        if erased:
            blanked = await deliverer.erase(erased)
            # the outbox files (the chat path today) of the messages blanked go with them
            await asyncio.to_thread(forget_outboxes, outbox_folders(settings.run_dir), blanked)

    # The decoder and parser keep one malformed record from failing the batch outside the
    # Guard, where NACK_ON_ERROR would redeliver it forever.
    @batch_subscriber(
        broker,
        *TOPICS,
        group_id=settings.notifier_group,
        max_records=BATCH_RECORDS,
        wait_ms=BATCH_WAIT_MS,
    )
    async def on_notification(msg: KafkaMessage) -> None:
        await guard.batch(msg, dispatch, types=WANTED, decoder=decode_command)


async def _watch_pending(
    sessions: async_sessionmaker[AsyncSession], stopping: asyncio.Event, every_s: float
) -> None:
    while not stopping.is_set():
        with contextlib.suppress(Exception):
            async with sessions() as session:
                OLDEST_PENDING.set(await ledger.oldest_pending_age_s(session))
        await woken(stopping, every_s)


PURGE_EVERY_S = 3600.0
"""How often rows past the retention are purged from the send ledger."""


async def _purge_periodically(
    db: UnitRunner, settings: NotifierSettings, stopping: asyncio.Event
) -> None:
    """Purge the ledger's rows past REFDESK_TRANSCRIPT_RETENTION_DAYS, a batch at a time, each
    hour (the topic's own retention, plus a day, at the least: ledger.retention_cutoff), and the
    chat and SMS outbox files written before the same cutoff."""
    [topic_days] = retention_days_of(
        [NOTIFICATIONS.name], raw_retention_days=settings.raw_retention_days
    )
    while not stopping.is_set():
        try:
            cutoff = ledger.retention_cutoff(
                utcnow(), retention_days=settings.transcript_retention_days, topic_days=topic_days
            )
            purge = functools.partial(ledger.purge_finished, cutoff=cutoff)
            while purged := await db(purge):
                LEDGER_PURGED.inc(purged)
                if purged < ledger.PURGE_BATCH or stopping.is_set():
                    break
            folders = outbox_folders(settings.run_dir)
            OUTBOX_PURGED.inc(await asyncio.to_thread(purge_outboxes, folders, cutoff=cutoff))
        except Exception as exc:  # the next round tries again
            log.warning("ledger purge failed", extra={"error": type(exc).__name__})
        await woken(stopping, PURGE_EVERY_S)


def create_app(settings: NotifierSettings) -> FastAPI:
    """The notifier's FastAPI app; broker and delivery lanes start and stop with it."""
    broker = build_broker(settings, client_id="notifier")
    engine = create_engine(settings.db_url("notifier"))
    http = httpx.AsyncClient(timeout=settings.smtp_timeout_s)
    sessions = session_factory(engine)
    deliverer = Deliverer(
        settings=settings,
        adapters=build_adapters(settings, http),
        publisher=BrokerPublisher(broker),
        db=UnitRunner(engine, name="notifier-ledger"),
    )
    subscribe(broker, deliverer, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate(engine, "notifier")
        await ensure_topics_when_reachable(settings, exit_if_not=True)
        await broker.start()
        stopping = asyncio.Event()
        tasks = [asyncio.create_task(Lane(deliverer, ch).run(stopping)) for ch in Channel]
        tasks.append(
            asyncio.create_task(
                _watch_pending(sessions, stopping, settings.pending_gauge_interval_s)
            )
        )
        tasks.append(asyncio.create_task(_purge_periodically(deliverer.db, settings, stopping)))
        lag = LagExporter(settings.kafka_bootstrap, {settings.notifier_group: list(TOPICS)}).start()
        try:
            yield
        finally:
            await lag.stop()
            stopping.set()
            deliverer.wake.set()
            await asyncio.wait(tasks, timeout=settings.shutdown_timeout_s / 2)
            for task in tasks:
                task.cancel()
            await broker.stop()
            await deliverer.close()
            await http.aclose()
            await engine.dispose()

    app = FastAPI(title="refdesk notifier", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    install_http_guards(app)

    async def ready() -> dict[str, bool]:
        database = await ping(engine) and await deliverer.work.db.ping()  # the ledger's thread
        return {"kafka": await broker.ping(2.0), "database": database}

    app.include_router(ops_router(ready))
    app.include_router(asyncapi_router(lambda: broker, service="notifier"))

    @app.get("/ledger/summary", summary="Notifications per state")
    async def summary() -> dict[str, int]:
        async with sessions() as session:
            return await ledger.counts(session)

    app.state.deliverer = deliverer
    app.state.broker = broker
    return app


def main() -> None:
    """Run the notifier until SIGTERM; refuse to start (exit 2) while a notification template
    does not compile or render (`template_check`)."""
    settings = NotifierSettings()
    configure_logging("notifier", settings.log_level)
    try:
        check_templates()
    except TemplateInvalid as exc:
        log.error(
            "refused to start: a notification template is broken; fix it and start again",
            extra={"template": exc.template, "error": str(exc)},
        )
        raise SystemExit(REFUSED_EXIT) from None
    serve(create_app(settings), settings, port=settings.notifier_port)
