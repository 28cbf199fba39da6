"""Delivering one claimed notification: build it, send it on its channel, record the outcome
(sent, retry later or dead) and announce a final one.

The lanes (lanes.py) claim due rows with a lease and hand each to `Deliverer.deliver`; the
outcome is written with those of the deliveries finishing meanwhile (ledger_work.py) and, once
final, announced on refdesk.deliveries (outcomes.py). A transient failure is a retry scheduled
in the ledger with jittered exponential backoff, a permanent one or exhausted attempts a dead
letter.

An SMS goes out through sms_delivery.py: looked up at the provider first when an earlier
attempt is in doubt (Twilio has no idempotency key), never taking a text already attributed to
another notification to the same number (recipients.py), and in parts, each recorded, when it
is over Twilio's body limit. Refused credentials (AuthenticationFailed) are retried at the
longest backoff without using up the attempts, logged at ERROR and counted, never
dead-lettered. A rate limit (RateLimited, Twilio's 429) waits at least its Retry-After, and no
other message's success cuts that wait short. A message the provider refused is announced
with the provider's code for why (Twilio's 21610, 21211, ...), for the desk to put in words.

An opt-out or opt-in command (SMS_OPT_OUT, SMS_OPT_IN) sends nothing: it is recorded with the
batch's other commands (consent.py). A text to a number that opted out is not handed to
Twilio: it is settled as refused with Twilio's code for it, 21610, without a dead letter (it is
what the patron asked for, not a fault to replay).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from faststream.kafka import KafkaBroker
from sqlalchemy.engine import Connection

from services.notifier import consent, ledger, ledger_outcomes, outbox, recipients, tables
from services.notifier.errors import (
    AuthenticationFailed,
    ChatEnded,
    OptedOut,
    PermanentError,
    PermanentSendError,
    RateLimited,
    SettingsRefused,
    TransientSendError,
    UncertainSendError,
    Unconfirmed,
)
from services.notifier.lanes import LaneWake
from services.notifier.ledger_work import LedgerWork
from services.notifier.metrics import (
    AUTH_FAILURES,
    CRISIS_FAILURES,
    DLQ,
    FAILURES,
    LATENCY,
    LEDGER_ERASED,
    RETRIES,
    SENT,
)
from services.notifier.outcomes import Announcer, Publisher, reason_class
from services.notifier.outgoing import Adapters, Outgoing, build, transmit
from services.notifier.settings import NotifierSettings
from services.notifier.sms_delivery import Progress, SmsAttempt
from shared.clock import utcnow
from shared.events import (
    CONSENT_KINDS,
    Channel,
    DeadLetter,
    NotificationKind,
    NotificationRequested,
    Priority,
)
from shared.syncdb import UnitRunner
from shared.topics import NOTIFICATIONS

log = logging.getLogger(__name__)

OPTED_OUT_AT_TWILIO = 21610
"""Twilio's "Attempt to send to unsubscribed recipient"."""

CRISIS_KINDS = {
    NotificationKind.CRISIS_ALERT,
    NotificationKind.CRISIS_REESCALATION,
    NotificationKind.CRISIS_RESOURCES,
}


def rate_limit_wait_s(retry_after_s: float) -> float:
    """The least a message the provider held back waits: its Retry-After (capped by the
    adapter, sms.RETRY_AFTER_MAX_S), stretched by up to a tenth so the messages one limit held
    back do not all come back in the same second."""
    return retry_after_s * random.uniform(1.0, 1.1)


@dataclass
class Deliverer:
    """Records commands, and renders, sends and records each claimed entry and announces its
    outcome. Its ports: the adapters, the publisher, the ledger's runner, the clock."""

    settings: NotifierSettings
    adapters: Adapters
    publisher: Publisher
    db: UnitRunner
    """Runs the hot ledger operations, each as one transaction."""
    clock: Callable[[], datetime] = utcnow
    """Now, timezone-aware."""
    wake: LaneWake = field(default_factory=lambda: LaneWake())
    failing: set[Channel] = field(default_factory=set)
    """Lanes whose provider failed (down, unreachable, refusing our credentials); their next
    success pulls retries forward. A rate limit is no such failure: the provider is up."""
    urgent: set[Channel] = field(default_factory=set)
    """Lanes that recorded an urgent command (a crisis alert) since their last claim: claimed
    at once, into any free slot."""
    work: LedgerWork = field(init=False)
    """The units of ledger work on `db`, and the outcomes written together."""
    announcer: Announcer = field(init=False)
    _texts: recipients.RecentTexts = field(init=False, default_factory=recipients.RecentTexts)
    """Provider ids of texts this process sent lately, by recipient, whose outcomes may not be
    committed yet."""
    _recipient_key: bytes | None = field(init=False, default=None)
    """The key of the recipients' hashes, read from the ledger once it is needed."""

    def __post_init__(self) -> None:
        self.work = LedgerWork(self.db, now=self.now, lease_s=self.settings.lease_s)
        self.announcer = Announcer(self.publisher, self.work)

    @property
    def broker(self) -> KafkaBroker:
        """The broker behind the publisher (`refdesk asyncapi` documents the service from it)."""
        broker = getattr(self.publisher, "broker", None)
        if not isinstance(broker, KafkaBroker):
            raise AttributeError("this deliverer publishes through no Kafka broker")
        return broker

    def now(self) -> datetime:
        """The clock's now, aware, in UTC (as the ledger's UTCDateTime columns hold it)."""
        return self.clock().astimezone(UTC)

    async def record(self, commands: list[NotificationRequested]) -> set[Channel]:
        """Add commands to the ledger, and opt-outs and opt-ins to the numbers' consent, in one
        transaction (committed on return); the channels that got new rows to send."""
        if not commands:
            return set()
        now = self.now()
        key = None
        if any(cmd.channel is Channel.SMS or cmd.kind in CONSENT_KINDS for cmd in commands):
            key = await self._key()
        changes = [cmd for cmd in commands if cmd.kind in CONSENT_KINDS]
        sends = [cmd for cmd in commands if cmd.kind not in CONSENT_KINDS]

        def unit(conn: Connection) -> set[str]:
            fresh = ledger.record(conn, sends, now=now, recipient_key=key)
            if changes and key is not None:
                fresh |= consent.record(conn, changes, now=now, recipient_key=key)
            return fresh

        fresh = await self.work.run(unit)
        for cmd in changes:
            if cmd.idempotency_key in fresh:
                log.info(
                    "sms consent recorded",
                    extra={"conversation_id": cmd.conversation_id, "kind": cmd.kind.value},
                )
        new = [cmd for cmd in sends if cmd.idempotency_key in fresh]
        self.urgent.update(cmd.channel for cmd in new if cmd.priority is Priority.URGENT)
        return {cmd.channel for cmd in new}

    async def erase(self, conversation_ids: Collection[str]) -> list[str]:
        """Blank what the ledger keeps of erased conversations' messages (`ledger.erase`); the
        idempotency keys of the rows blanked."""
        if not conversation_ids:
            return []
        blanked = await self.work.run(lambda conn: ledger.erase(conn, conversation_ids))
        LEDGER_ERASED.inc(len(blanked))
        for conversation_id in sorted(set(conversation_ids)):
            log.info(
                "conversation erased from the ledger", extra={"conversation_id": conversation_id}
            )
        return blanked

    async def close(self) -> None:
        """Release the outcome writer, the ledger's connection and the SMTP sessions, after
        writing the announced flags still waiting."""
        await self.work.close()
        await self.adapters.email.close()

    def _max_attempts(self, cmd: NotificationRequested) -> int:
        if cmd.kind in CRISIS_KINDS:
            return self.settings.crisis_max_attempts
        return self.settings.max_attempts

    def _exhausted(self, cmd: NotificationRequested, attempts: int) -> bool:
        """Whether a notification that failed transiently `attempts` times is given up: its
        attempts are used up and it was asked for REFDESK_RETRY_FOR_H ago (a relay down for
        an afternoon had dead-lettered every email of it after about six minutes)."""
        if attempts < self._max_attempts(cmd):
            return False
        return self.now() - cmd.requested_at >= timedelta(hours=self.settings.retry_for_h)

    def _retry_delay_s(self, cmd: NotificationRequested, attempts: int) -> float:
        """The backoff, or, once the attempts are used up, the patient interval."""
        if attempts < self._max_attempts(cmd):
            return self.backoff_s(attempts)
        patient = self.settings.patient_backoff_s
        return random.uniform(patient / 2, patient)

    def backoff_s(self, attempts: int) -> float:
        """Exponential backoff with full jitter, capped."""
        growth = self.settings.backoff_base_s * 2 ** max(0, attempts - 1)
        ceiling = min(self.settings.backoff_max_s, growth)
        return random.uniform(ceiling / 2, ceiling)

    async def deliver(self, entry: ledger.Entry) -> None:
        """Build and send one claimed entry; record sent, retry-later or dead; announce a final
        outcome."""
        cmd = entry.command
        labels = {"kind": cmd.kind.value, "channel": cmd.channel.value}
        started, began = time.perf_counter(), self.now()
        out: Outgoing | None = None
        parts: Progress | None = None
        try:
            out = build(cmd, self.settings)
            if cmd.channel is Channel.SMS:
                if await self._opted_out(entry):
                    raise OptedOut()
                parts = await self._send_sms(entry, out)
                provider_id: str | None = parts.sids[0]
                out = dataclasses.replace(out, segments=parts.segments)
            else:
                provider_id = await transmit(self.adapters, out)
        except OptedOut as exc:
            reason, code = "opted out", exc.provider_code
            await self._dead(entry, out, str(exc), reason, error_code=code, dead_letter=False)
            FAILURES.labels(reason="opted_out", **labels).inc()
            return
        except ChatEnded as exc:  # the patron left the chat: nothing to replay, nobody to page
            await self._dead(entry, out, str(exc), "chat ended", dead_letter=False)
            FAILURES.labels(reason="chat_ended", **labels).inc()
            return
        except PermanentError as exc:
            code = exc.provider_code if isinstance(exc, PermanentSendError) else None
            if cmd.channel is Channel.SMS and code == OPTED_OUT_AT_TWILIO:
                # Twilio keeps an opt-out of its own (a STOP refdesk never saw): remembered, so
                # the number's next text is settled here, with no dead letter nor a page for it
                await self._opted_out_at_provider(entry, since=began)
                await self._dead(
                    entry, out, str(exc), "opted out", error_code=code, dead_letter=False
                )
                FAILURES.labels(reason="opted_out", **labels).inc()
                return
            await self._dead(entry, out, f"permanent: {exc}", reason_class(exc), error_code=code)
            FAILURES.labels(reason="permanent", **labels).inc()
            if cmd.kind in CRISIS_KINDS:  # refused for good: RefdeskCrisisNotificationFailing
                CRISIS_FAILURES.inc()
            return
        except AuthenticationFailed as exc:
            await self._refused(entry, exc)
            return
        except Unconfirmed as exc:
            await self._unconfirmed(entry, out, exc, began)
            return
        except Exception as exc:  # transient by default: the relay or network failed
            FAILURES.labels(reason="transient", **labels).inc()
            if cmd.kind in CRISIS_KINDS:
                CRISIS_FAILURES.inc()
            attempts = entry.attempts + 1
            if self._exhausted(cmd, attempts):
                reason = reason_class(exc, exhausted=True)
                await self._dead(entry, out, f"retries exhausted after {attempts}: {exc}", reason)
                return
            RETRIES.labels(**labels).inc()
            delay_s = self._retry_delay_s(cmd, attempts)
            asked = exc.retry_after_s if isinstance(exc, TransientSendError) else None
            if asked:  # the provider asked for the wait (Retry-After): no sooner, nor pulled in
                delay_s = max(delay_s, rate_limit_wait_s(asked))
            if not isinstance(exc, RateLimited):  # a rate limit says the provider is up
                self.failing.add(cmd.channel)
            await self.work.submit(
                ledger_outcomes.retry_later(
                    entry.key,
                    delay_s=delay_s,
                    error=str(exc),
                    in_doubt_since=began if isinstance(exc, UncertainSendError) else None,
                    held=bool(asked) or isinstance(exc, RateLimited),
                )
            )
            log.warning(
                "send failed; retry scheduled",
                extra={
                    "conversation_id": cmd.conversation_id,
                    "kind": cmd.kind.value,
                    "attempts": attempts,
                    "retry_in_s": round(delay_s, 1),
                    "error": type(exc).__name__,
                },
            )
            return
        # The relay is back: what waits in backoff on this lane goes now, not up to
        # backoff_max_s later.
        recovered = cmd.channel in self.failing
        self.failing.discard(cmd.channel)
        at, delivered = self.now(), out.delivered(provider_id)
        await self.work.submit(
            ledger_outcomes.sent(
                entry.key,
                delivered,
                at=at,
                pull_forward=cmd.channel.value if recovered else None,
                progress=parts.to_json() if parts is not None and len(parts.sids) > 1 else None,
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
        await self.announcer.announce(
            [outbox.Finished(cmd, tables.SENT, entry.attempts + 1, at, None, delivered)]
        )

    async def _send_sms(self, entry: ledger.Entry, out: Outgoing) -> Progress:
        """Send this entry's text: resumed after the parts the ledger says were sent, each part
        recorded before the next; the progress with every part's id."""
        cmd = entry.command
        recipient = recipients.recipient_hash(cmd.recipient, await self._key())

        async def save(progress: Progress) -> None:
            now, lease_s = self.now(), self.settings.lease_s
            await self.work.run(
                functools.partial(
                    ledger_outcomes.save_progress,
                    key=entry.key,
                    progress=progress.to_json(),
                    lease_s=lease_s,
                    now=now,
                )
            )

        attempt = SmsAttempt(
            self.adapters.sms,
            to=cmd.recipient,
            text=out.text,
            key=cmd.idempotency_key,
            save=save,
            progress=Progress.from_json(entry.progress),
            in_doubt_since=entry.in_doubt_since,
            crisis=cmd.kind in CRISIS_KINDS,
            last_attempt=self._exhausted(cmd, entry.attempts + 1),
            taken=functools.partial(self._sms_ids_taken, recipient),
        )
        progress = await attempt.run()
        self._texts.remember(recipient, progress.sids)
        return progress

    async def _opted_out(self, entry: ledger.Entry) -> bool:
        """Whether the entry's number opted out of texts (and this is not its confirmation)."""
        recipient = recipients.recipient_hash(entry.command.recipient, await self._key())
        return await self.work.run(
            functools.partial(consent.refuses, recipient_hash=recipient, key=entry.key)
        )

    async def _opted_out_at_provider(self, entry: ledger.Entry, *, since: datetime) -> None:
        """Record Twilio's own opt-out of the entry's number (its 21610), unless the number's
        consent changed since the attempt began (a START read meanwhile stands)."""
        recipient = recipients.recipient_hash(entry.command.recipient, await self._key())
        await self.work.run(
            functools.partial(
                consent.provider_opt_out,
                recipient_hash=recipient,
                key=entry.key,
                conversation_id=entry.command.conversation_id,
                since=since,
                now=self.now(),
            )
        )

    async def _sms_ids_taken(self, recipient: str, since: datetime) -> set[str]:
        """The number's texts since then that belong to other notifications, in any
        conversation: recorded in the ledger, or sent by this process and not recorded yet."""
        recorded = await self.work.run(
            functools.partial(recipients.ids_taken, recipient=recipient, since=since)
        )
        return recorded | self._texts.of(recipient)

    async def _key(self) -> bytes:
        """The key of the recipients' hashes (read from the ledger, or made, on first use)."""
        if self._recipient_key is None:
            self._recipient_key = await self.work.run(recipients.ledger_key)
        return self._recipient_key

    async def _unconfirmed(
        self, entry: ledger.Entry, out: Outgoing | None, exc: Unconfirmed, began: datetime
    ) -> None:
        """The relay took the whole email and did not confirm it: it may reach the patron, and
        every resend is another copy. Sent again no sooner than REFDESK_SMTP_UNCONFIRMED_WAIT_S
        (a relay that scans mail may take minutes: RFC 5321 allows ten for that reply), and
        given up after REFDESK_SMTP_UNCONFIRMED_COPIES, said as "may have arrived" (a relay that
        answered after 45 s every time had one staff reply reach the patron six times, and
        would have gone on)."""
        cmd = entry.command
        labels = {"kind": cmd.kind.value, "channel": cmd.channel.value}
        FAILURES.labels(reason="unconfirmed", **labels).inc()
        if cmd.kind in CRISIS_KINDS:
            CRISIS_FAILURES.inc()
        copies = int((entry.progress or {}).get("unconfirmed", 0)) + 1
        if copies >= self.settings.smtp_unconfirmed_copies:
            error = f"the relay took {copies} copies without confirming one: {exc}"
            await self._dead(entry, out, error, "unconfirmed")
            return
        RETRIES.labels(**labels).inc()
        delay_s = max(self.backoff_s(entry.attempts + 1), self.settings.smtp_unconfirmed_wait_s)
        delay_s = random.uniform(delay_s, delay_s * 1.2)
        await self.work.submit(
            ledger_outcomes.retry_later(
                entry.key,
                delay_s=delay_s,
                error=str(exc),
                in_doubt_since=began,
                progress={"unconfirmed": copies},
            )
        )
        log.warning(
            "the relay did not confirm an email; sent again later",
            extra={
                "conversation_id": cmd.conversation_id,
                "kind": cmd.kind.value,
                "copies": copies,
                "retry_in_s": round(delay_s, 1),
            },
        )

    async def _refused(self, entry: ledger.Entry, exc: AuthenticationFailed) -> None:
        """The provider refused our credentials: loud, and retried at the longest backoff
        without using up the attempts, until an operator fixes them."""
        cmd = entry.command
        FAILURES.labels(reason="auth", kind=cmd.kind.value, channel=cmd.channel.value).inc()
        AUTH_FAILURES.labels(channel=cmd.channel.value).inc()
        if cmd.kind in CRISIS_KINDS:
            CRISIS_FAILURES.inc()
        self.failing.add(cmd.channel)
        ceiling = self.settings.backoff_max_s
        await self.work.submit(
            ledger_outcomes.retry_later(
                entry.key,
                delay_s=random.uniform(ceiling / 2, ceiling),
                error=str(exc),
                counts=False,
            )
        )
        what = (
            "does not accept the notifier's settings (the relay's STARTTLS or AUTH, the sending "
            "number or the account)"
            if isinstance(exc, SettingsRefused)
            else "refused the notifier's credentials"
        )
        log.error(
            "the %s provider %s; the notification waits and is retried until they are fixed",
            cmd.channel.value,
            what,
            extra={
                "conversation_id": cmd.conversation_id,
                "kind": cmd.kind.value,
                "channel": cmd.channel.value,
                "error": str(exc),
            },
        )

    async def _dead(
        self,
        entry: ledger.Entry,
        out: Outgoing | None,
        error: str,
        reason: str,
        *,
        error_code: int | None = None,
        dead_letter: bool = True,
    ) -> None:
        """Record a permanent failure and announce it; dead-letter the command unless the
        failure is what was asked for (`dead_letter=False`: the number opted out)."""
        cmd = entry.command
        if dead_letter:
            await self._dead_letter(cmd, entry.key, error)
        at = self.now()
        delivered = out.delivered() if out is not None else ledger_outcomes.NOTHING
        await self.work.submit(
            ledger_outcomes.dead(
                entry.key,
                error=error,
                reason=reason,
                delivered=delivered,
                at=at,
                error_code=error_code,
            )
        )
        if dead_letter:
            DLQ.labels(kind=cmd.kind.value, channel=cmd.channel.value).inc()
        log.warning(
            "notification dead-lettered" if dead_letter else "notification not sent",
            extra={
                "conversation_id": cmd.conversation_id,
                "kind": cmd.kind.value,
                "reason": error[:200],
            },
        )
        await self.announcer.announce(
            [
                outbox.Finished(
                    cmd, tables.DEAD, entry.attempts + 1, at, reason, delivered, error_code
                )
            ]
        )

    async def _dead_letter(self, cmd: NotificationRequested, key: str, error: str) -> None:
        """Put the command on the notifications DLQ, with why, for an operator to replay."""
        letter = DeadLetter(
            topic=NOTIFICATIONS.name,
            partition=-1,
            offset=-1,
            key=cmd.conversation_id,
            value=cmd.model_dump_json(),
            reason=error,
            consumer_group=self.settings.notifier_group,
            failed_at=self.clock(),
        )
        await self.publisher(NOTIFICATIONS.dlq_name, letter, key=cmd.conversation_id, event_id=key)
