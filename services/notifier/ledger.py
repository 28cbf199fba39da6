"""Send-ledger operations. The ledger makes each notification's effect happen once.

A command is recorded (idempotently, by key) before its offset is committed; a lane worker
then claims due rows with a lease, delivers them and records the outcomes. A crash between
the relay accepting a message and the ledger write leaves the row pending, so it is sent
again with the same Message-ID (docs/reliability.md). That claim finds the lease it took over
run out without an outcome and marks the row in doubt (`in_doubt_since`), as a retry after a
lost answer does: the SMS lane then asks Twilio before sending again (sms_delivery.py).

Each final outcome (sent or dead) is written with what was delivered, `outcome_published`
false and a lease held by the worker that announces it on refdesk.deliveries (outbox.py).

Times are naive UTC. Every unit takes the caller's `now` (the service's clock), so tests can
move time; it defaults to the wall clock.

The hot operations (record, claim, outcomes) are synchronous SQLAlchemy Core functions over
one `Connection`, each meant to run as one transaction (`shared.syncdb.UnitRunner`). Their
statements are built once, here: building a construct costs more than SQLite takes to run it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, bindparam, case, false, func, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import recipients
from services.notifier.tables import DEAD, IS_PENDING, PENDING, PRIORITY_RANK, SENT, ledger
from shared.clock import utcnow
from shared.db import UTCDateTime
from shared.events import Channel, NotificationRequested


@dataclass(frozen=True)
class Entry:
    """A claimed notification: this worker holds its lease until the outcome is recorded."""

    key: str
    command: NotificationRequested
    attempts: int
    in_doubt_since: datetime | None = None
    """An earlier attempt may have reached the provider, starting then (None: none did)."""
    progress: dict[str, Any] | None = None
    """How far an SMS sent in parts got (sms_delivery.Progress), if it did."""


@dataclass(frozen=True)
class Claim:
    """What one claim leased, and whether due rows may have been left behind."""

    entries: list[Entry]
    more: bool
    """True when rows that may be due were not taken: past the limit, a second row of one
    conversation, a row another worker leased first, or rows of the conversations in flight."""


@dataclass(frozen=True)
class Delivered:
    """What a delivery put (or would have put) in front of the patron: kept with the outcome,
    so an announcement made again after a crash says the same."""

    text: str | None = None
    subject: str | None = None
    segments: int | None = None
    message_id: str | None = None
    provider_id: str | None = None


NOTHING = Delivered()


@dataclass(frozen=True)
class Outcome:
    """The result of one delivery attempt, to be written with others in one transaction."""

    key: str
    state: str
    """SENT, DEAD, or PENDING for a retry at retry_at."""
    delivered: Delivered = NOTHING
    retry_after_s: float | None = None
    error: str | None = None
    reason: str | None = None
    """DEAD: the short failure class announced (never a remote body, never patron data)."""
    pull_forward: str | None = None
    """A channel whose relay is back: its pending rows in backoff become due now."""
    at: datetime | None = None
    """When it happened (naive UTC); unset: when it is written."""
    in_doubt_since: datetime | None = None
    """PENDING: the attempt that failed may have reached the provider; it began then."""
    counts: bool = True
    """PENDING: whether the failed attempt counts against the notification's attempts."""
    progress: dict[str, Any] | None = None
    """SENT: the parts of an SMS sent in parts (kept with the row)."""


def sent(
    key: str,
    delivered: Delivered,
    *,
    at: datetime | None = None,
    pull_forward: str | None = None,
    progress: dict[str, Any] | None = None,
) -> Outcome:
    """The relay or provider accepted the message."""
    return Outcome(
        key, SENT, delivered=delivered, pull_forward=pull_forward, at=at, progress=progress
    )


def retry_later(
    key: str,
    *,
    delay_s: float,
    error: str,
    in_doubt_since: datetime | None = None,
    counts: bool = True,
) -> Outcome:
    """A transient failure: try again after delay_s. `in_doubt_since`: when the attempt began,
    if it may have reached the provider; `counts`: False for a failure that must not use up
    the attempts (the provider refused the credentials)."""
    return Outcome(
        key,
        PENDING,
        retry_after_s=delay_s,
        error=error[:1000],
        in_doubt_since=in_doubt_since,
        counts=counts,
    )


def dead(
    key: str,
    *,
    error: str,
    reason: str,
    delivered: Delivered = NOTHING,
    at: datetime | None = None,
) -> Outcome:
    """A permanent failure or exhausted retries: the row leaves the send queue for good."""
    return Outcome(key, DEAD, delivered=delivered, error=error[:1000], reason=reason[:64], at=at)


# ---- statements ------------------------------------------------------------------------------

LEASE_FREE = or_(ledger.c.lease_until.is_(None), ledger.c.lease_until < bindparam("now"))

_RECORD = {
    name: dialect.insert(ledger)
    .on_conflict_do_nothing(index_elements=[ledger.c.idempotency_key])
    .returning(ledger.c.idempotency_key)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}

# Most urgent first, then in the order they became due (a conversation's hand-off before its
# survey). PostgreSQL skips rows another replica is claiming; SQLite has one writer at a time,
# and the lease update below re-checks every row either way.
_DUE = (
    select(
        ledger.c.idempotency_key,
        ledger.c.conversation_id,
        ledger.c.command,
        ledger.c.attempts,
        ledger.c.progress,
    )
    .where(
        ledger.c.channel == bindparam("channel"),
        ledger.c.state == PENDING,
        ledger.c.next_attempt_at <= bindparam("now"),
        LEASE_FREE,
        ledger.c.conversation_id.not_in(bindparam("busy", expanding=True)),
    )
    .order_by(ledger.c.priority_rank, ledger.c.next_attempt_at, ledger.c.created_at)
    .limit(bindparam("n"))
    .with_for_update(skip_locked=True)
)
_LEASE = (
    update(ledger)
    .where(
        ledger.c.idempotency_key.in_(bindparam("keys", expanding=True)),
        ledger.c.state == PENDING,
        ledger.c.next_attempt_at <= bindparam("now"),
        LEASE_FREE,
    )
    .values(
        lease_until=bindparam("until"),
        claimed_at=bindparam("now"),
        # A lease that ran out on a pending row: its worker died (or lost the database) before
        # recording an outcome, perhaps after the provider took the message.
        in_doubt_since=case(
            (
                ledger.c.lease_until.is_not(None),
                func.coalesce(ledger.c.in_doubt_since, ledger.c.claimed_at, ledger.c.created_at),
            ),
            else_=ledger.c.in_doubt_since,
        ),
    )
    .returning(ledger.c.idempotency_key, ledger.c.in_doubt_since)
)

_BY_KEY = ledger.c.idempotency_key == bindparam("k")
# A final outcome keeps a lease: the worker that wrote it announces it; after the lease,
# anyone may announce it again.
_FINAL = {
    "finished_at": bindparam("at"),
    "lease_until": bindparam("until"),
    "attempts": ledger.c.attempts + 1,
    "message_id": bindparam("mid"),
    "provider_id": bindparam("pid"),
    "delivered_text": bindparam("text"),
    "subject": bindparam("subject"),
    "segments": bindparam("segments"),
    "outcome_published": false(),
}
_PROGRESS = bindparam("progress", type_=JSON(none_as_null=True))
_MARK_SENT = (
    update(ledger)
    .where(_BY_KEY)
    .values(
        state=SENT,
        sent_at=bindparam("at"),
        last_error=null(),
        reason=null(),
        in_doubt_since=null(),
        progress=func.coalesce(_PROGRESS, ledger.c.progress),
        **_FINAL,
    )
)
# A row is only rescheduled or buried while pending: one that another worker sent after this
# worker's lease ran out stays sent.
_RETRY_LATER = (
    update(ledger)
    .where(_BY_KEY, ledger.c.state == PENDING)
    .values(
        next_attempt_at=bindparam("at"),
        lease_until=null(),
        attempts=ledger.c.attempts + bindparam("inc"),
        last_error=bindparam("err"),
        # the first attempt in doubt since the message was last known not to exist
        in_doubt_since=func.coalesce(
            ledger.c.in_doubt_since, bindparam("doubt", type_=UTCDateTime())
        ),
    )
)
# An SMS part went out: the row records it, nothing is in doubt, and its lease is renewed for
# the parts to come.
_SAVE_PROGRESS = (
    update(ledger)
    .where(_BY_KEY, ledger.c.state == PENDING)
    .values(progress=_PROGRESS, in_doubt_since=null(), lease_until=bindparam("until"))
)
_MARK_DEAD = (
    update(ledger)
    .where(_BY_KEY, ledger.c.state == PENDING)
    .values(state=DEAD, last_error=bindparam("err"), reason=bindparam("reason"), **_FINAL)
)
_RETRY_NOW = (
    update(ledger)
    .where(
        ledger.c.channel == bindparam("lane"),
        ledger.c.state == PENDING,
        ledger.c.next_attempt_at > bindparam("now"),
    )
    .values(next_attempt_at=bindparam("now"))
)

# The gauge's read, served by the partial index over pending rows (ix_send_ledger_pending).
_OLDEST_PENDING = select(func.min(ledger.c.created_at)).where(IS_PENDING)

# ---- units of work (one transaction each) -----------------------------------------------------


def record(
    conn: Connection,
    commands: Sequence[NotificationRequested],
    *,
    now: datetime | None = None,
    recipient_key: bytes | None = None,
) -> set[str]:
    """Add commands to the ledger, in their order; the keys that were new (the others are
    redeliveries, or repeats within the batch, and are left alone). An SMS row keeps its
    number's keyed hash (recipients.py; the key read here when the caller has none)."""
    if not commands:
        return set()
    now = now or utcnow()
    key = recipient_key
    if key is None and any(cmd.channel is Channel.SMS for cmd in commands):
        key = recipients.ledger_key(conn)
    # A microsecond apart: rows recorded together stay due in the order they were consumed.
    rows = [
        {
            "idempotency_key": cmd.idempotency_key,
            "kind": cmd.kind.value,
            "channel": cmd.channel.value,
            "priority": cmd.priority.value,
            "priority_rank": PRIORITY_RANK[cmd.priority],
            "conversation_id": cmd.conversation_id,
            "command": cmd.model_dump(mode="json"),
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now + timedelta(microseconds=i),
            "created_at": now + timedelta(microseconds=i),
            "recipient_hash": (
                recipients.recipient_hash(cmd.recipient, key)
                if key is not None and cmd.channel is Channel.SMS
                else None
            ),
        }
        for i, cmd in enumerate(commands)
    ]
    return set(conn.scalars(_RECORD[conn.dialect.name], rows))


def claim(
    conn: Connection,
    channel: str,
    *,
    limit: int,
    busy: Collection[str],
    lease_s: float,
    now: datetime | None = None,
) -> Claim:
    """Lease up to `limit` due rows of a channel, at most one per conversation, none of `busy`.

    Rows come most urgent first; a conversation's later rows wait for the next claim, after its
    first one is done. A row that another worker leased meanwhile is not returned.
    """
    now = now or utcnow()
    rows = conn.execute(
        _DUE, {"channel": channel, "now": now, "busy": sorted(busy), "n": limit + 1}
    ).all()
    chosen: dict[str, Any] = {}
    for row in rows:
        if len(chosen) == limit:
            break
        chosen.setdefault(row.conversation_id, row)
    if not chosen:
        return Claim([], more=bool(rows) or bool(busy))
    leased: dict[str, datetime | None] = {
        key: doubt
        for key, doubt in conn.execute(
            _LEASE,
            {
                "keys": [row.idempotency_key for row in chosen.values()],
                "now": now,
                "until": now + timedelta(seconds=lease_s),
            },
        )
    }
    entries = [
        Entry(
            key=row.idempotency_key,
            command=NotificationRequested.model_validate(row.command),
            attempts=row.attempts,
            in_doubt_since=leased[row.idempotency_key],
            progress=row.progress,
        )
        for row in chosen.values()
        if row.idempotency_key in leased
    ]
    more = len(rows) > len(entries) or bool(busy)
    return Claim(entries, more=more)


def apply_outcomes(
    conn: Connection, outcomes: Sequence[Outcome], *, lease_s: float, now: datetime | None = None
) -> None:
    """Write a batch of delivery outcomes, then pull forward the retries of recovered lanes.

    A final outcome is left leased for `lease_s`: its announcement is this worker's to make.
    """
    now = now or utcnow()
    until = now + timedelta(seconds=lease_s)

    def final(o: Outcome) -> dict[str, Any]:
        d = o.delivered
        return {
            "k": o.key,
            "at": o.at or now,
            "until": until,
            "mid": d.message_id,
            "pid": d.provider_id,
            "text": d.text,
            "subject": d.subject,
            "segments": d.segments,
        }

    marks = [final(o) | {"progress": o.progress} for o in outcomes if o.state == SENT]
    retries = [
        {
            "k": o.key,
            "at": now + timedelta(seconds=o.retry_after_s or 0.0),
            "err": o.error,
            "inc": 1 if o.counts else 0,
            "doubt": o.in_doubt_since,
        }
        for o in outcomes
        if o.state == PENDING
    ]
    buried = [final(o) | {"err": o.error, "reason": o.reason} for o in outcomes if o.state == DEAD]
    for statement, params in ((_MARK_SENT, marks), (_RETRY_LATER, retries), (_MARK_DEAD, buried)):
        if params:
            conn.execute(statement, params)
    for channel in sorted({o.pull_forward for o in outcomes if o.pull_forward}):
        conn.execute(_RETRY_NOW, {"lane": channel, "now": now})


def save_progress(
    conn: Connection,
    key: str,
    *,
    progress: dict[str, Any],
    lease_s: float,
    now: datetime | None = None,
) -> None:
    """Record how far an SMS sent in parts got (nothing of it is in doubt now) and renew the
    row's lease for the parts still to send."""
    now = now or utcnow()
    conn.execute(
        _SAVE_PROGRESS,
        {"k": key, "progress": progress, "until": now + timedelta(seconds=lease_s)},
    )


# ---- reads for the HTTP API and metrics -----------------------------------------------------


async def oldest_pending_age_s(session: AsyncSession) -> float:
    """Age in seconds of the oldest notification not yet sent (0 when none)."""
    oldest: datetime | None = (await session.execute(_OLDEST_PENDING)).scalar()
    if oldest is None:
        return 0.0
    return max(0.0, (utcnow() - oldest).total_seconds())


async def counts(session: AsyncSession) -> dict[str, int]:
    """Number of ledger rows per state."""
    rows = await session.execute(select(ledger.c.state, func.count()).group_by(ledger.c.state))
    out = {PENDING: 0, SENT: 0, DEAD: 0}
    out.update({state: int(n) for state, n in rows})
    return out
