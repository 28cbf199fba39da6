"""The notifier service: wiring of settings, broker, ledger, delivery lanes and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from pydantic import BaseModel

from services.notifier import ledger
from services.notifier.chat import OutboxChatSender
from services.notifier.delivery import Adapters, Deliverer
from services.notifier.email_sender import SmtpSender, SmtpSettings
from services.notifier.metrics import OLDEST_PENDING
from services.notifier.settings import NotifierSettings
from services.notifier.sms import OutboxSmsSender, SmsSender, TwilioSmsSender
from shared.asyncapi import asyncapi_router
from shared.consumer import Guard, PoisonMessage
from shared.db import create_engine, migrate, ping, session_factory
from shared.events import AnyEvent, Channel, NotificationRequested
from shared.http import install_problem_handlers, ops_router
from shared.kafka import build_broker, ensure_topics
from shared.lag import LagExporter
from shared.logs import configure_logging
from shared.service import serve
from shared.topics import NOTIFICATIONS

log = logging.getLogger(__name__)


def build_adapters(settings: NotifierSettings, http: httpx.AsyncClient) -> Adapters:
    """The delivery adapters the settings ask for."""
    smtp = SmtpSender(SmtpSettings(
        host=settings.smtp_host, port=settings.smtp_port, tls=settings.smtp_tls,
        username=settings.smtp_user, password=settings.smtp_password,
        timeout=settings.smtp_timeout_s, validate_certs=settings.smtp_validate_certs,
        ca_file=settings.smtp_ca_file,
    ))
    sms: SmsSender
    if settings.sms_api_base_url:
        sms = TwilioSmsSender(settings.sms_api_base_url, settings.twilio_account_sid or "",
                              settings.twilio_auth_token or "", settings.sms_from or "", http)
    else:
        sms = OutboxSmsSender(settings.run_dir / "outbox" / "sms")
    chat = OutboxChatSender(settings.run_dir / "outbox" / "chat")
    return Adapters(email=smtp, sms=sms, chat=chat)


async def _raw_body(msg: StreamMessage[Any]) -> bytes:
    # The Guard decodes. FastStream's own decoding (JSON when the content-type says so or is
    # missing) fails outside it on poison, and NACK_ON_ERROR then redelivers it forever.
    return bytes(msg.body)


def subscribe(broker: KafkaBroker, deliverer: Deliverer, settings: NotifierSettings) -> None:
    """Record each command in the ledger; the offset is committed only after that commit."""
    guard = Guard(broker, group=settings.notifier_group, source="refdesk/notifier")

    async def dispatch(_event: AnyEvent, data: BaseModel) -> None:
        if not isinstance(data, NotificationRequested):
            raise PoisonMessage(f"not a notification command: {type(data).__name__}")
        async with deliverer.sessions() as session:
            if await ledger.record(session, data):
                await session.commit()
                deliverer.wake.set()

    @broker.subscriber(NOTIFICATIONS.name, group_id=settings.notifier_group,
                       auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR,
                       max_poll_records=100, decoder=_raw_body)
    async def on_notification(msg: KafkaMessage) -> None:
        # raw bytes (msg.body): a `body: bytes` parameter fails outside the Guard on a JSON
        # record without our content-type header, and NACK_ON_ERROR would redeliver it forever
        await guard(msg.body, msg, dispatch)


async def _watch_pending(deliverer: Deliverer, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        with contextlib.suppress(Exception):
            async with deliverer.sessions() as session:
                OLDEST_PENDING.set(await ledger.oldest_pending_age_s(session))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=5)


def create_app(settings: NotifierSettings) -> FastAPI:
    """The notifier's FastAPI app; broker and delivery lanes start and stop with it."""
    broker = build_broker(settings, client_id="notifier")
    engine = create_engine(settings.db_url("notifier"))
    http = httpx.AsyncClient(timeout=settings.smtp_timeout_s)
    deliverer = Deliverer(settings=settings, sessions=session_factory(engine),
                          adapters=build_adapters(settings, http), broker=broker)
    subscribe(broker, deliverer, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate(engine, "notifier")
        await ensure_topics(settings)
        await broker.start()
        stopping = asyncio.Event()
        tasks = [asyncio.create_task(deliverer.lane(ch, stopping)) for ch in Channel]
        tasks.append(asyncio.create_task(_watch_pending(deliverer, stopping)))
        lag = LagExporter(settings.kafka_bootstrap,
                          {settings.notifier_group: [NOTIFICATIONS.name]}).start()
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
            await http.aclose()
            await engine.dispose()

    app = FastAPI(title="refdesk notifier", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)

    async def ready() -> dict[str, bool]:
        return {"kafka": await broker.ping(2.0), "database": await ping(engine)}

    app.include_router(ops_router(ready))
    app.include_router(asyncapi_router(lambda: broker, service="notifier"))

    @app.get("/ledger/summary", summary="Notifications per state")
    async def summary() -> dict[str, int]:
        async with deliverer.sessions() as session:
            return await ledger.counts(session)

    app.state.deliverer = deliverer
    return app


def main() -> None:
    """Run the notifier until SIGTERM."""
    settings = NotifierSettings()
    configure_logging("notifier", settings.log_level)
    serve(create_app(settings), settings, port=settings.notifier_port)
