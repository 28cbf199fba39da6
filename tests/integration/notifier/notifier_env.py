"""Helpers for the notifier's service-level tests: a scripted SMTP sink, commands, waits and
a running notifier (its real lifespan) against the real broker and database."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from refdesk_cli.mailsink import SinkHandler
from services.notifier import ledger as ledger_ops
from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from services.notifier.tables import PENDING, ledger
from shared.db import create_engine, migrate
from shared.events import Channel, NotificationKind, NotificationRequested, Priority
from shared.kafka import publish
from shared.topics import NOTIFICATIONS
from tests.eventually import eventually
from tests.kafka_helpers import Event, collect
from tests.servers import SmtpController

SURVEY_URL = "https://libanswers.tccd.edu/survey/abc"


# ---- SMTP ------------------------------------------------------------------------------------


@dataclass
class ScriptedSink(SinkHandler):
    """The mail sink, plus replies scripted per recipient, an optional pause per message, and
    what a test needs to see how the notifier used it: the sessions that carried messages,
    how many messages were in DATA at once, and the order DATA began and ended in."""

    replies_for: dict[str, list[str]] = field(default_factory=dict)
    """recipient -> SMTP replies to give (one per attempt) before accepting its messages."""
    pause_s: float = 0.0
    pause_for: dict[str, float] = field(default_factory=dict)
    """recipient -> a longer pause for its messages."""
    drop_reused: bool = False
    """Hang up, without a reply, on the second MAIL FROM of a session: a relay that closes
    a session just as the client reuses it."""
    sessions: dict[int, Session] = field(default_factory=dict)
    """Sessions that reached DATA, by id (the objects are kept, so ids stay unique)."""
    in_data: int = 0
    most_in_data: int = 0
    timeline: list[tuple[str, str]] = field(default_factory=list)
    """("begin" or "end", recipient) for each message accepted, in the order they happened."""
    dropped: int = 0
    _mails: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        count = self._mails[id(session)] = self._mails.get(id(session), 0) + 1
        if self.drop_reused and count == 2 and server.transport is not None:
            self.dropped += 1
            server.transport.close()
            return "421 4.4.2 closing"  # never arrives: the transport is closed
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                script = self.replies_for.get(rcpt)
                if script:
                    return script.pop(0)
        self.sessions[id(session)] = session
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        self.timeline.append(("begin", rcpt))
        self.in_data += 1
        self.most_in_data = max(self.most_in_data, self.in_data)
        try:
            pause = self.pause_for.get(rcpt, self.pause_s)
            if pause:
                await asyncio.sleep(pause)
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.in_data -= 1
            self.timeline.append(("end", rcpt))

    def with_id(self, message_id: str) -> list[EmailMessage]:
        """Accepted messages carrying this Message-ID."""
        return [m for m in list(self.messages) if m["Message-ID"] == message_id]

    def count_ids(self) -> Counter[str]:
        """How many accepted messages carry each Message-ID."""
        return Counter(str(m["Message-ID"]) for m in list(self.messages))


class SmtpRelay:
    """An aiosmtpd server that a test may stop and start again: the first start binds a port the
    OS picks (read `.port` after it), a restart listens on that same port."""

    def __init__(self, **options: Any) -> None:
        self.port = 0
        self.handler = ScriptedSink()
        self._options = options  # aiosmtpd Controller/SMTP options, e.g. tls_context
        self._controller: SmtpController | None = None

    def start(self) -> None:
        """Listen (again) on the same port with the same handler."""
        self._controller = SmtpController(self.handler, port=self.port, **self._options)
        self._controller.start()
        self.port = self._controller.port

    def stop(self) -> None:
        """Stop listening: connections are refused until start()."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# ---- commands --------------------------------------------------------------------------------


def command(
    kind: NotificationKind = NotificationKind.SURVEY,
    *,
    channel: Channel = Channel.EMAIL,
    recipient: str = "ana.gomez@my.tccd.edu",
    context: dict[str, Any] | None = None,
    priority: Priority = Priority.NORMAL,
    key: str | None = None,
) -> NotificationRequested:
    """A NotificationRequested with a unique idempotency key and conversation."""
    if context is None:
        survey = kind is NotificationKind.SURVEY
        context = {"survey_url": SURVEY_URL, "patron_name": "Ana"} if survey else {}
    return NotificationRequested(
        idempotency_key=key or f"test-{uuid.uuid4().hex}",
        kind=kind,
        channel=channel,
        recipient=recipient,
        conversation_id=f"conv-{uuid.uuid4().hex[:12]}",
        priority=priority,
        context=context,
        requested_at=datetime.now(UTC),
    )


async def send(producer: KafkaBroker, cmd: NotificationRequested) -> None:
    """Publish a command to refdesk.notifications as the router would."""
    await publish(
        producer,
        NOTIFICATIONS.name,
        cmd,
        key=cmd.conversation_id,
        source="refdesk/test",
        subject=cmd.conversation_id,
    )


async def send_raw(
    producer: KafkaBroker, body: bytes, *, key: str, headers: dict[str, str] | None = None
) -> None:
    """Publish arbitrary bytes (and headers) to refdesk.notifications."""
    await producer.publish(body, topic=NOTIFICATIONS.name, key=key.encode(), headers=headers)


# ---- waiting and reading ---------------------------------------------------------------------


async def dead_letters(
    bootstrap: str, group: str, *, count: int, timeout: float = 45.0
) -> list[Event]:
    """The notification DLQ's letters written by one consumer group, once ``count`` arrived."""
    letters = await collect(
        bootstrap,
        NOTIFICATIONS.dlq_name,
        until=lambda found: len(found) >= count,
        where=lambda e: e.get("data", {}).get("consumer_group") == group,
        timeout=timeout,
    )
    assert len(letters) >= count, f"expected {count} dead letters, found {len(letters)}: {letters}"
    return letters


def metric(name: str, **labels: str) -> float:
    """A sample's current value in the process registry (0 when never set)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---- the service -----------------------------------------------------------------------------


def notifier_settings(
    bootstrap: str, database_url: str, run_dir: Path, smtp_port: int, **extra: Any
) -> NotifierSettings:
    """Settings for a test notifier: its own group, quick retries, the given relay."""
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "database_url": database_url,
        "run_dir": run_dir,
        "topic_partitions": 1,
        "notifier_group": f"test-notifier-{uuid.uuid4().hex[:12]}",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_tls": "none",
        "smtp_timeout_s": 5,
        "backoff_base_s": 0.2,
        "backoff_max_s": 1,
        "poll_interval_s": 0.2,
        "pending_gauge_interval_s": 0.2,
        "survey_url": SURVEY_URL,
        "shutdown_timeout_s": 8,
    }
    values.update(extra)
    return NotifierSettings(**values)


@asynccontextmanager
async def running(settings: NotifierSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Run a notifier through its real lifespan; yield an HTTP client bound to it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
            yield client


async def summary(client: httpx.AsyncClient) -> dict[str, int]:
    """GET /ledger/summary."""
    response = await client.get("/ledger/summary")
    assert response.status_code == 200, response.text
    body: dict[str, int] = response.json()
    return body


async def settled(
    client: httpx.AsyncClient, *, sent: int, dead: int = 0, timeout: float = 90.0
) -> dict[str, int]:
    """Wait until the ledger holds nothing pending and the expected sent/dead rows."""
    want = {"pending": 0, "sent": sent, "dead": dead}
    seen: dict[str, int] = {}

    async def _check() -> bool:
        seen.update(await summary(client))
        return seen == want

    try:
        await eventually(_check, f"ledger {want}", timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the ledger last said {seen}") from None
    return want


async def leased_pending(database_url: str) -> int:
    """Pending ledger rows that a worker still holds a lease on."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(func.count())
                .select_from(ledger)
                .where(ledger.c.state == PENDING, ledger.c.lease_until.is_not(None))
            )
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def preload(database_url: str, commands: list[NotificationRequested]) -> None:
    """Record commands in a (migrated) ledger, in order, as the consumer would have: a notifier
    started afterwards finds them all due at once."""
    engine = create_engine(database_url)
    try:
        await migrate(engine, "notifier")
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: ledger_ops.record(sync, commands))
    finally:
        await engine.dispose()


async def attempts(database_url: str) -> dict[str, int]:
    """Each ledger row's attempt count, by idempotency key."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(ledger.c.idempotency_key, ledger.c.attempts))
            return {key: int(n) for key, n in rows}
    finally:
        await engine.dispose()
