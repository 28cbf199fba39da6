"""Delivery lanes: one worker per channel claims due ledger rows and delivers them concurrently.

Up to `notifier_lane_concurrency` deliveries are in flight per lane, never two of one
conversation, so a conversation's notifications still go out one after another in the order
they became due (a hand-off before its survey). Due rows are leased several at a time in one
transaction, and the outcomes of concurrent deliveries are written together (group commit,
`shared.batching.Batcher`). The crash window (relay accepted, ledger not yet written) is
therefore up to the lane concurrency per lane. Retries are rows scheduled for later, never
sleeps, so one failing notification does not hold up the others.
"""

from __future__ import annotations

import asyncio
import functools
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
from shared.batching import Batcher
from shared.events import Channel, DeadLetter, NotificationKind, NotificationRequested
from shared.kafka import publish
from shared.syncdb import UnitRunner
from shared.topics import NOTIFICATIONS

log = logging.getLogger(__name__)
CRISIS_KINDS = {
    NotificationKind.CRISIS_ALERT,
    NotificationKind.CRISIS_REESCALATION,
    NotificationKind.CRISIS_RESOURCES,
}


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

    def set(self, channel: Channel | None = None) -> None:
        """New work may be due: wake that channel's lane, or every lane."""
        if channel is not None:
            self.flag(channel).set()
            return
        for flag in self._flags.values():
            flag.set()


@dataclass
class Deliverer:
    """Claims due ledger entries per lane, renders and sends them, and records the outcomes."""

    settings: NotifierSettings
    sessions: async_sessionmaker[AsyncSession]
    adapters: Adapters
    broker: KafkaBroker
    db: UnitRunner
    """Runs the hot ledger operations, each as one transaction."""
    wake: LaneWake = field(default_factory=lambda: LaneWake())
    failing: set[Channel] = field(default_factory=set)
    """Lanes whose last attempt failed transiently; their next success pulls retries forward."""
    _outcomes: Batcher[ledger.Outcome, None] = field(init=False)

    def __post_init__(self) -> None:
        self._outcomes = Batcher(self._write_outcomes)

    async def record(self, commands: list[NotificationRequested]) -> set[Channel]:
        """Add commands to the ledger in one transaction (committed on return); the channels
        that got new rows."""
        if not commands:
            return set()
        fresh = await self.db(lambda conn: ledger.record(conn, commands))
        return {cmd.channel for cmd in commands if cmd.idempotency_key in fresh}

    async def _write_outcomes(self, outcomes: list[ledger.Outcome]) -> list[None]:
        await self.db(lambda conn: ledger.apply_outcomes(conn, outcomes))
        return [None] * len(outcomes)

    async def close(self) -> None:
        """Release the outcome writer, the ledger's connection and the SMTP sessions."""
        await self._outcomes.close()
        self.db.close()
        await self.adapters.email.close()

    def _context(self, cmd: NotificationRequested) -> dict[str, Any]:
        ctx = dict(cmd.context)
        if cmd.kind is NotificationKind.SURVEY:
            ctx.setdefault("survey_url", self.settings.survey_url)
        return ctx

    async def _send(self, cmd: NotificationRequested) -> tuple[str | None, str | None]:
        ctx = self._context(cmd)
        if cmd.channel is Channel.EMAIL:
            msg = render_email(
                cmd.kind,
                ctx,
                to=cmd.recipient,
                mail_from=self.settings.mail_from,
                idempotency_key=cmd.idempotency_key,
                conversation_id=cmd.conversation_id,
                message_id_domain=self.settings.message_id_domain,
                priority=cmd.priority,
            )
            await self.adapters.email.send(msg)
            return str(msg["Message-ID"]), None
        if cmd.channel is Channel.SMS:
            body = render_sms(cmd.kind, ctx)
            return None, await self.adapters.sms.send(
                to=cmd.recipient, body=body, idempotency_key=cmd.idempotency_key
            )
        body = render_chat(cmd.kind, ctx)
        await self.adapters.chat.send(
            conversation_id=cmd.recipient, body=body, idempotency_key=cmd.idempotency_key
        )
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
            await self._outcomes.submit(
                ledger.retry_later(entry.key, delay_s=self.backoff_s(attempts), error=str(exc))
            )
            log.warning(
                "send failed; retry scheduled",
                extra={
                    "conversation_id": cmd.conversation_id,
                    "kind": cmd.kind.value,
                    "attempts": attempts,
                    "error": type(exc).__name__,
                },
            )
            return
        # The relay is back: what waits in backoff on this lane goes now, not up to
        # backoff_max_s later.
        recovered = cmd.channel in self.failing
        self.failing.discard(cmd.channel)
        await self._outcomes.submit(
            ledger.sent(
                entry.key,
                message_id=message_id,
                provider_id=provider_id,
                pull_forward=cmd.channel.value if recovered else None,
            )
        )
        if recovered:
            self.wake.set(cmd.channel)
        LATENCY.labels(**labels).observe(time.perf_counter() - started)
        SENT.labels(**labels).inc()
        log.info(
            "sent",
            extra={
                "conversation_id": cmd.conversation_id,
                "kind": cmd.kind.value,
                "channel": cmd.channel.value,
                "notification": entry.key,
            },
        )

    async def _dead(self, entry: ledger.Entry, reason: str) -> None:
        cmd = entry.command
        letter = DeadLetter(
            topic=NOTIFICATIONS.name,
            partition=-1,
            offset=-1,
            key=cmd.conversation_id,
            value=cmd.model_dump_json(),
            reason=reason,
            consumer_group=self.settings.notifier_group,
            failed_at=datetime.now(UTC),
        )
        await publish(
            self.broker,
            NOTIFICATIONS.dlq_name,
            letter,
            key=cmd.conversation_id,
            source="refdesk/notifier",
            event_id=entry.key,
        )
        await self._outcomes.submit(ledger.dead(entry.key, error=reason))
        DLQ.labels(kind=cmd.kind.value, channel=cmd.channel.value).inc()
        log.warning(
            "notification dead-lettered",
            extra={
                "conversation_id": cmd.conversation_id,
                "kind": cmd.kind.value,
                "reason": reason[:200],
            },
        )

    async def lane(self, channel: Channel, stopping: asyncio.Event) -> None:
        """Deliver due notifications of one channel until told to stop, several at a time.

        On stop, no more rows are claimed and the deliveries in flight are finished, so no
        lease is left behind.
        """
        flag = self.wake.flag(channel)
        limit = self.settings.notifier_lane_concurrency
        in_flight: dict[str, asyncio.Task[None]] = {}  # conversation id -> its delivery
        backlog = False  # whether due rows may have been left behind by the last claim

        def finished(conversation: str, _task: asyncio.Task[None]) -> None:
            in_flight.pop(conversation, None)
            if backlog:  # a slot (or that conversation) is free for what was left behind
                flag.set()

        try:
            while not stopping.is_set():
                # Cleared before claiming, not after: a wake-up that arrives meanwhile (a new
                # row, a finished delivery) is kept, so nothing waits for the poll interval.
                flag.clear()
                free = limit - len(in_flight)
                if free <= 0:
                    backlog = True
                else:
                    try:
                        claim = await self.db(
                            functools.partial(
                                ledger.claim,
                                channel=channel.value,
                                limit=free,
                                busy=list(in_flight),
                                lease_s=self.settings.lease_s,
                            )
                        )
                    except Exception as exc:  # the database may be briefly unavailable
                        log.warning(
                            "lane iteration failed",
                            extra={"channel": channel.value, "error": type(exc).__name__},
                        )
                        claim = ledger.Claim([], more=False)
                    backlog = claim.more
                    for entry in claim.entries:
                        conversation = entry.command.conversation_id
                        task = asyncio.create_task(self._deliver_claimed(entry))
                        in_flight[conversation] = task
                        task.add_done_callback(functools.partial(finished, conversation))
                try:
                    await asyncio.wait_for(flag.wait(), timeout=self.settings.poll_interval_s)
                except TimeoutError:
                    pass
            if in_flight:
                await asyncio.wait(list(in_flight.values()))
        finally:
            for task in list(in_flight.values()):
                task.cancel()

    async def _deliver_claimed(self, entry: ledger.Entry) -> None:
        try:
            await self.deliver(entry)
        except Exception as exc:  # its lease runs out and the row is attempted again
            log.warning(
                "delivery outcome not recorded",
                extra={
                    "conversation_id": entry.command.conversation_id,
                    "notification": entry.key,
                    "error": type(exc).__name__,
                },
            )
