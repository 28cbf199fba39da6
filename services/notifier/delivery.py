"""Delivery lanes: one worker per channel claims due ledger rows and delivers them concurrently.

Up to `notifier_lane_concurrency` deliveries are in flight per lane, never two of one
conversation, so a conversation's notifications still go out one after another in the order
they became due (a hand-off before its survey). Due rows are leased several at a time in one
transaction: while a lane drains a backlog it claims once a quarter of its slots are free, not
after every delivery, and an urgent command (a crisis alert) is claimed as soon as it is
recorded. The outcomes of concurrent deliveries are written together (group commit,
`shared.batching.Batcher`). The crash window (relay accepted, ledger not yet written) is
therefore up to the lane concurrency per lane. A write that meets a lost database connection
(a restart or failover of PostgreSQL) is tried again on a new one, up to OUTCOME_WRITE_TRIES
times, so such an event does not open that window. Retries are rows scheduled for later, never
sleeps, so one failing notification does not hold up the others.

An SMS goes out through sms_delivery.py: looked up at the provider first when an earlier
attempt is in doubt (Twilio has no idempotency key), and in parts, each recorded, when it is
over Twilio's body limit. Refused credentials (AuthenticationFailed) are retried at the longest
backoff without using up the attempts, logged at ERROR and counted, never dead-lettered.

Each final outcome, once written, is announced on refdesk.deliveries (outcomes.py); the flag
that says so rides on the next unit of ledger work (a lane claims at least every poll
interval). The lane also announces, every poll interval, the outcomes whose announcement was
lost (outbox.py): an announcement whose flag a crash lost is made again after its lease, with
the same event id, and consumers drop the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from faststream.kafka import KafkaBroker
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from services.notifier import ledger, outbox, tables
from services.notifier.errors import AuthenticationFailed, PermanentError, UncertainSendError
from services.notifier.metrics import (
    AUTH_FAILURES,
    CRISIS_FAILURES,
    DLQ,
    FAILURES,
    LATENCY,
    RETRIES,
    SENT,
)
from services.notifier.outcomes import Publisher, announcement, announcement_id, reason_class
from services.notifier.outgoing import Adapters, Outgoing, build, transmit
from services.notifier.settings import NotifierSettings
from services.notifier.sms_delivery import Progress, SmsAttempt
from shared.batching import Batcher
from shared.clock import utcnow, woken
from shared.events import (
    Channel,
    DeadLetter,
    NotificationKind,
    NotificationRequested,
    Priority,
)
from shared.syncdb import UnitRunner
from shared.topics import DELIVERIES, NOTIFICATIONS

log = logging.getLogger(__name__)

OUTCOME_WRITE_TRIES = 3
"""Tries at writing a batch of outcomes whose database connection was lost, a short pause apart:
each delivery in it was sent, and one not recorded is sent again once its lease runs out."""
OUTCOME_RETRY_PAUSE_S = 0.2
T = TypeVar("T")
CRISIS_KINDS = {
    NotificationKind.CRISIS_ALERT,
    NotificationKind.CRISIS_REESCALATION,
    NotificationKind.CRISIS_RESOURCES,
}
ANNOUNCE_BATCH = 100
"""Most lost announcements one lane takes up at a time."""
RECENT_SMS_PER_CONVERSATION = 50
RECENT_SMS_CONVERSATIONS = 10_000
"""Bounds of the provider ids of texts sent lately, kept for the lookups of texts in doubt."""

__all__ = ["Adapters", "Deliverer", "LaneWake"]


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
    """Claims due ledger entries per lane, renders and sends them, records the outcomes and
    announces them. Its ports: the adapters, the publisher, the ledger's runner, the clock."""

    settings: NotifierSettings
    adapters: Adapters
    publisher: Publisher
    db: UnitRunner
    """Runs the hot ledger operations, each as one transaction."""
    clock: Callable[[], datetime] = utcnow
    """Now, timezone-aware."""
    wake: LaneWake = field(default_factory=lambda: LaneWake())
    failing: set[Channel] = field(default_factory=set)
    """Lanes whose last attempt failed transiently; their next success pulls retries forward."""
    urgent: set[Channel] = field(default_factory=set)
    """Lanes that recorded an urgent command (a crisis alert) since their last claim: claimed
    at once, into any free slot."""
    _outcomes: Batcher[ledger.Outcome, None] = field(init=False)
    _recent_sms: OrderedDict[str, list[str]] = field(init=False, default_factory=OrderedDict)
    """Provider ids of texts this process sent lately, by conversation, whose outcomes may not
    be committed yet: a lookup for another text in doubt must not claim them either."""
    _marks: list[str] = field(init=False, default_factory=list)
    """Outcomes the broker took whose flag is not yet written: the next unit of work writes
    it (the lane claims at least every poll interval, well inside the lease)."""

    def __post_init__(self) -> None:
        self._outcomes = Batcher(self._write_outcomes)

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
        """Add commands to the ledger in one transaction (committed on return); the channels
        that got new rows."""
        if not commands:
            return set()
        now = self.now()
        fresh = await self._unit(lambda conn: ledger.record(conn, commands, now=now))
        new = [cmd for cmd in commands if cmd.idempotency_key in fresh]
        self.urgent.update(cmd.channel for cmd in new if cmd.priority is Priority.URGENT)
        return {cmd.channel for cmd in new}

    async def _write_outcomes(self, outcomes: list[ledger.Outcome]) -> list[None]:
        now, lease_s = self.now(), self.settings.lease_s
        write = functools.partial(
            ledger.apply_outcomes, outcomes=outcomes, lease_s=lease_s, now=now
        )
        for tried in range(1, OUTCOME_WRITE_TRIES + 1):
            try:
                await self._unit(write)
                break
            except DBAPIError as exc:
                if not exc.connection_invalidated or tried == OUTCOME_WRITE_TRIES:
                    raise
                log.warning(
                    "the ledger's connection was lost writing outcomes; trying again",
                    extra={"outcomes": len(outcomes), "tried": tried},
                )
                await asyncio.sleep(OUTCOME_RETRY_PAUSE_S * tried)
        return [None] * len(outcomes)

    async def _unit(self, fn: Callable[[Connection], T]) -> T:
        """Run one unit of ledger work, writing the announced flags waiting for one in the
        same transaction (they wait again if it fails)."""
        marks, self._marks = self._marks, []

        def unit(conn: Connection) -> T:
            outbox.mark_announced(conn, marks)
            return fn(conn)

        try:
            return await self.db(unit)
        except BaseException:
            self._marks[:0] = marks
            raise

    async def close(self) -> None:
        """Release the outcome writer, the ledger's connection and the SMTP sessions, after
        writing the announced flags still waiting."""
        await self._outcomes.close()
        if self._marks:
            with contextlib.suppress(Exception):  # announced again after the lease: dropped
                await self._unit(lambda conn: None)
        self.db.close()
        await self.adapters.email.close()

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
                parts = await self._sms(entry, out).run()
                provider_id: str | None = parts.sids[0]
                out = dataclasses.replace(out, segments=parts.segments)
            else:
                provider_id = await transmit(self.adapters, out)
        except PermanentError as exc:
            await self._dead(entry, out, f"permanent: {exc}", reason_class(exc))
            FAILURES.labels(reason="permanent", **labels).inc()
            return
        except AuthenticationFailed as exc:
            await self._refused(entry, exc)
            return
        except Exception as exc:  # transient by default: the relay or network failed
            FAILURES.labels(reason="transient", **labels).inc()
            if cmd.kind in CRISIS_KINDS:
                CRISIS_FAILURES.inc()
            attempts = entry.attempts + 1
            if attempts >= self._max_attempts(cmd):
                reason = reason_class(exc, exhausted=True)
                await self._dead(entry, out, f"retries exhausted after {attempts}: {exc}", reason)
                return
            RETRIES.labels(**labels).inc()
            self.failing.add(cmd.channel)
            await self._outcomes.submit(
                ledger.retry_later(
                    entry.key,
                    delay_s=self.backoff_s(attempts),
                    error=str(exc),
                    in_doubt_since=began if isinstance(exc, UncertainSendError) else None,
                )
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
        if parts is not None:
            self._remember_sms(cmd.conversation_id, parts.sids)
        at, delivered = self.now(), out.delivered(provider_id)
        await self._outcomes.submit(
            ledger.sent(
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
        await self.announce(
            [outbox.Finished(cmd, tables.SENT, entry.attempts + 1, at, None, delivered)]
        )

    def _sms(self, entry: ledger.Entry, out: Outgoing) -> SmsAttempt:
        """This entry's SMS attempt: it resumes after the parts the ledger says were sent, and
        records each part it sends before the next."""
        cmd = entry.command

        async def save(progress: Progress) -> None:
            now, lease_s = self.now(), self.settings.lease_s
            await self._unit(
                functools.partial(
                    ledger.save_progress,
                    key=entry.key,
                    progress=progress.to_json(),
                    lease_s=lease_s,
                    now=now,
                )
            )

        return SmsAttempt(
            self.adapters.sms,
            to=cmd.recipient,
            text=out.text,
            key=cmd.idempotency_key,
            save=save,
            progress=Progress.from_json(entry.progress),
            in_doubt_since=entry.in_doubt_since,
            crisis=cmd.kind in CRISIS_KINDS,
            last_attempt=entry.attempts + 1 >= self._max_attempts(cmd),
            taken=functools.partial(self._sms_ids_taken, cmd.conversation_id),
        )

    async def _sms_ids_taken(self, conversation_id: str, since: datetime) -> set[str]:
        """The conversation's texts since then that belong to other notifications: recorded
        in the ledger, or sent by this process and not recorded yet."""
        recorded = await self._unit(
            functools.partial(ledger.sms_sent_ids, conversation_id=conversation_id, since=since)
        )
        return recorded | set(self._recent_sms.get(conversation_id, ()))

    def _remember_sms(self, conversation_id: str, ids: Iterable[str]) -> None:
        """Keep the ids of a text just sent, for the lookups that follow (bounded)."""
        kept = self._recent_sms.setdefault(conversation_id, [])
        kept.extend(ids)
        del kept[:-RECENT_SMS_PER_CONVERSATION]
        self._recent_sms.move_to_end(conversation_id)
        while len(self._recent_sms) > RECENT_SMS_CONVERSATIONS:
            self._recent_sms.popitem(last=False)

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
        await self._outcomes.submit(
            ledger.retry_later(
                entry.key,
                delay_s=random.uniform(ceiling / 2, ceiling),
                error=str(exc),
                counts=False,
            )
        )
        log.error(
            "the %s provider refused the notifier's credentials; the notification waits and is "
            "retried until they are fixed",
            cmd.channel.value,
            extra={
                "conversation_id": cmd.conversation_id,
                "kind": cmd.kind.value,
                "channel": cmd.channel.value,
                "error": str(exc),
            },
        )

    async def _dead(
        self, entry: ledger.Entry, out: Outgoing | None, error: str, reason: str
    ) -> None:
        cmd = entry.command
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
        await self.publisher(
            NOTIFICATIONS.dlq_name, letter, key=cmd.conversation_id, event_id=entry.key
        )
        at = self.now()
        delivered = out.delivered() if out is not None else ledger.NOTHING
        await self._outcomes.submit(
            ledger.dead(entry.key, error=error, reason=reason, delivered=delivered, at=at)
        )
        DLQ.labels(kind=cmd.kind.value, channel=cmd.channel.value).inc()
        log.warning(
            "notification dead-lettered",
            extra={
                "conversation_id": cmd.conversation_id,
                "kind": cmd.kind.value,
                "reason": error[:200],
            },
        )
        await self.announce(
            [outbox.Finished(cmd, tables.DEAD, entry.attempts + 1, at, reason, delivered)]
        )

    async def announce(self, finished: list[outbox.Finished]) -> None:
        """Publish the outcomes on refdesk.deliveries; the next unit of ledger work records
        which the broker took.

        One that is not taken stays unannounced in the ledger, leased: the lane announces it
        again after the lease (`announce_lost`). Never raises for a failed publish.
        """

        async def one(done: outbox.Finished) -> str | None:
            cmd = done.command
            try:
                await self.publisher(
                    DELIVERIES.name,
                    announcement(done),
                    key=cmd.conversation_id,
                    event_id=announcement_id(cmd.idempotency_key),
                )
            except Exception as exc:  # the broker: the ledger keeps it for a later attempt
                log.warning(
                    "outcome not announced; announced again later",
                    extra={"notification": cmd.idempotency_key, "error": type(exc).__name__},
                )
                return None
            return cmd.idempotency_key

        taken = await asyncio.gather(*map(one, finished))
        self._marks += [key for key in taken if key is not None]

    async def announce_lost(self, channel: Channel) -> int:
        """Announce the channel's final outcomes that no worker announced (after their lease);
        how many were taken up."""
        now, lease_s = self.now(), self.settings.lease_s
        finished = await self._unit(
            functools.partial(
                outbox.claim_unannounced,
                channel=channel.value,
                limit=ANNOUNCE_BATCH,
                lease_s=lease_s,
                now=now,
            )
        )
        if finished:
            await self.announce(finished)
        return len(finished)

    async def lane(self, channel: Channel, stopping: asyncio.Event) -> None:
        """Deliver due notifications of one channel until told to stop, several at a time, and
        announce lost outcomes every poll interval.

        On stop, no more rows are claimed and the deliveries in flight are finished, so no
        lease is left behind.
        """
        flag = self.wake.flag(channel)
        limit = self.settings.notifier_lane_concurrency
        refill = max(1, limit // 4)
        in_flight: dict[str, asyncio.Task[None]] = {}  # conversation id -> its delivery
        backlog = False  # whether due rows may have been left behind by the last claim
        full = False  # whether the last claim took all it asked for: more are likely due
        next_sweep = time.monotonic()

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
                urgent = channel in self.urgent
                # Draining a backlog, a claim waits until a quarter of the slots are free: a
                # unit of ledger work per few deliveries, not one per delivery. A newly
                # recorded urgent command and new work on a lane that had caught up are claimed
                # at once.
                if free <= 0 or (full and in_flight and free < refill and not urgent):
                    backlog = True
                else:
                    self.urgent.discard(channel)
                    claim = await self._claim(channel, free, list(in_flight))
                    backlog = claim.more
                    full = len(claim.entries) == free
                    for entry in claim.entries:
                        conversation = entry.command.conversation_id
                        task = asyncio.create_task(self._deliver_claimed(entry))
                        in_flight[conversation] = task
                        task.add_done_callback(functools.partial(finished, conversation))
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.settings.poll_interval_s
                    await self._sweep(channel)
                await woken(flag, self.settings.poll_interval_s)
            if in_flight:
                await asyncio.wait(list(in_flight.values()))
        finally:
            for task in list(in_flight.values()):
                task.cancel()

    async def _claim(self, channel: Channel, free: int, busy: list[str]) -> ledger.Claim:
        try:
            return await self._unit(
                functools.partial(
                    ledger.claim,
                    channel=channel.value,
                    limit=free,
                    busy=busy,
                    lease_s=self.settings.lease_s,
                    now=self.now(),
                )
            )
        except Exception as exc:  # the database may be briefly unavailable
            log.warning(
                "lane iteration failed",
                extra={"channel": channel.value, "error": type(exc).__name__},
            )
            return ledger.Claim([], more=False)

    async def _sweep(self, channel: Channel) -> None:
        try:
            await self.announce_lost(channel)
        except Exception as exc:  # the database may be briefly unavailable
            log.warning(
                "announcing lost outcomes failed",
                extra={"channel": channel.value, "error": type(exc).__name__},
            )

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
