"""Delivery lanes: one worker per channel takes due ledger rows and delivers them in turn.

One message at a time per lane keeps the crash window (relay accepted, ledger not yet
written) to a single message per lane. Retries are rows scheduled for later, never sleeps,
so one failing notification does not hold up the others.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier import ledger
from services.notifier.chat import OutboxChatSender
from services.notifier.email_sender import EmailSender
from services.notifier.errors import PermanentError
from services.notifier.messages import make_message_id, render_chat, render_email, render_sms
from services.notifier.metrics import CRISIS_FAILURES, DLQ, FAILURES, LATENCY, RETRIES, SENT
from services.notifier.settings import NotifierSettings
from services.notifier.sms import SmsSender
from shared.events import Channel, DeadLetter, NotificationKind, NotificationRequested
from shared.kafka import publish
from shared.topics import NOTIFICATIONS

log = logging.getLogger(__name__)
CRISIS_KINDS = {NotificationKind.CRISIS_ALERT, NotificationKind.CRISIS_REESCALATION,
                NotificationKind.CRISIS_RESOURCES}


@dataclass
class Adapters:
    email: EmailSender
    sms: SmsSender
    chat: OutboxChatSender


class LaneWake:
    """One wake-up flag per lane: set() raises them all, and a lane clears only its own."""

    def __init__(self) -> None:
        self._flags: dict[Channel, asyncio.Event] = {}

    def flag(self, channel: Channel) -> asyncio.Event:
        """The flag a lane waits on."""
        return self._flags.setdefault(channel, asyncio.Event())

    def set(self) -> None:
        """New work may be due: wake every lane."""
        for flag in self._flags.values():
            flag.set()


@dataclass
class Deliverer:
    """Renders and sends one ledger entry, then records the outcome."""

    settings: NotifierSettings
    sessions: async_sessionmaker[AsyncSession]
    adapters: Adapters
    broker: KafkaBroker
    wake: LaneWake = field(default_factory=lambda: LaneWake())
    failing: set[Channel] = field(default_factory=set)
    """Lanes whose last attempt failed transiently; their next success pulls retries forward."""

    def _context(self, cmd: NotificationRequested) -> dict[str, Any]:
        ctx = dict(cmd.context)
        if cmd.kind is NotificationKind.SURVEY:
            ctx.setdefault("survey_url", self.settings.survey_url)
        return ctx

    async def _send(self, cmd: NotificationRequested) -> tuple[str | None, str | None]:
        ctx = self._context(cmd)
        if cmd.channel is Channel.EMAIL:
            msg = render_email(
                cmd.kind, ctx, to=cmd.recipient, mail_from=self.settings.mail_from,
                idempotency_key=cmd.idempotency_key, conversation_id=cmd.conversation_id,
                message_id_domain=self.settings.message_id_domain, priority=cmd.priority,
            )
            await self.adapters.email.send(msg)
            return str(msg["Message-ID"]), None
        if cmd.channel is Channel.SMS:
            body = render_sms(cmd.kind, ctx)
            return None, await self.adapters.sms.send(
                to=cmd.recipient, body=body, idempotency_key=cmd.idempotency_key)
        body = render_chat(cmd.kind, ctx)
        await self.adapters.chat.send(conversation_id=cmd.recipient, body=body,
                                      idempotency_key=cmd.idempotency_key)
        return make_message_id(cmd.idempotency_key, self.settings.message_id_domain), None

    def _max_attempts(self, cmd: NotificationRequested) -> int:
        if cmd.kind in CRISIS_KINDS:
            return self.settings.crisis_max_attempts
        return self.settings.max_attempts

    def backoff_s(self, attempts: int) -> float:
        """Exponential backoff with full jitter, capped."""
        growth = self.settings.backoff_base_s * 2 ** max(0, attempts - 1)
        ceiling = min(self.settings.backoff_max_s, growth)
        return random.uniform(ceiling / 2, ceiling)

    async def deliver(self, entry: ledger.Entry) -> None:
        """Send one claimed entry and record sent, retry-later or dead."""
        cmd = entry.command
        labels = {"kind": cmd.kind.value, "channel": cmd.channel.value}
        started = time.perf_counter()
        try:
            message_id, provider_id = await self._send(cmd)
        except PermanentError as exc:
            await self._dead(entry, f"permanent: {exc}")
            FAILURES.labels(reason="permanent", **labels).inc()
            return
        except Exception as exc:  # transient by default: the relay or network failed
            FAILURES.labels(reason="transient", **labels).inc()
            if cmd.kind in CRISIS_KINDS:
                CRISIS_FAILURES.inc()
            attempts = entry.attempts + 1
            if attempts >= self._max_attempts(cmd):
                await self._dead(entry, f"retries exhausted after {attempts}: {exc}")
                return
            RETRIES.labels(**labels).inc()
            self.failing.add(cmd.channel)
            async with self.sessions() as session:
                await ledger.retry_later(session, entry.key, delay_s=self.backoff_s(attempts),
                                         error=str(exc))
            log.warning("send failed; retry scheduled",
                        extra={"conversation_id": cmd.conversation_id, "kind": cmd.kind.value,
                               "attempts": attempts, "error": type(exc).__name__})
            return
        async with self.sessions() as session:
            await ledger.mark_sent(session, entry.key, message_id=message_id,
                                   provider_id=provider_id)
            if cmd.channel in self.failing:
                # The relay is back: what waits in backoff on this lane goes now, not up to
                # backoff_max_s later.
                self.failing.discard(cmd.channel)
                await ledger.retry_now(session, cmd.channel.value)
        LATENCY.labels(**labels).observe(time.perf_counter() - started)
        SENT.labels(**labels).inc()
        log.info("sent", extra={"conversation_id": cmd.conversation_id, "kind": cmd.kind.value,
                                "channel": cmd.channel.value, "notification": entry.key})

    async def _dead(self, entry: ledger.Entry, reason: str) -> None:
        cmd = entry.command
        letter = DeadLetter(
            topic=NOTIFICATIONS.name, partition=-1, offset=-1, key=cmd.conversation_id,
            value=cmd.model_dump_json(), reason=reason, consumer_group=self.settings.notifier_group,
            failed_at=datetime.now(UTC),
        )
        await publish(self.broker, NOTIFICATIONS.dlq_name, letter, key=cmd.conversation_id,
                      source="refdesk/notifier", event_id=entry.key)
        async with self.sessions() as session:
            await ledger.mark_dead(session, entry.key, error=reason)
        DLQ.labels(kind=cmd.kind.value, channel=cmd.channel.value).inc()
        log.warning("notification dead-lettered",
                    extra={"conversation_id": cmd.conversation_id, "kind": cmd.kind.value,
                           "reason": reason[:200]})

    async def lane(self, channel: Channel, stopping: asyncio.Event) -> None:
        """Deliver due notifications of one channel until told to stop."""
        flag = self.wake.flag(channel)
        while not stopping.is_set():
            # Cleared before draining, not after: a wake-up that arrives during the drain is
            # kept, so a notification recorded meanwhile does not wait for the poll interval.
            flag.clear()
            try:
                worked = await self._drain(channel, stopping)
            except Exception as exc:  # the database may be briefly unavailable; keep the lane alive
                log.warning("lane iteration failed",
                            extra={"channel": channel.value, "error": type(exc).__name__})
                worked = False
            if not worked:
                try:
                    await asyncio.wait_for(flag.wait(), timeout=self.settings.poll_interval_s)
                except TimeoutError:
                    pass

    async def _drain(self, channel: Channel, stopping: asyncio.Event) -> bool:
        async with self.sessions() as session:
            keys = await ledger.due(session, channel.value)
        for key in keys:
            if stopping.is_set():
                break
            async with self.sessions() as session:
                entry = await ledger.claim(session, key, lease_s=self.settings.lease_s)
            if entry is not None:
                await self.deliver(entry)
        return bool(keys)
