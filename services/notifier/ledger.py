"""Send-ledger operations. The ledger makes each notification's effect happen once.

A command is recorded (idempotently, by key) before its offset is committed; a lane worker
then claims due rows with a lease, delivers them and records the outcomes. A crash between
the relay accepting a message and the ledger write leaves the row pending, so it is sent
again with the same Message-ID (docs/reliability.md).

The hot operations (record, claim, outcomes) are synchronous SQLAlchemy Core functions over
one `Connection`, each meant to run as one transaction (`shared.syncdb.UnitRunner`). Their
statements are built once, here: building a construct costs more than SQLite takes to run it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.tables import DEAD, PENDING, SENT, ledger
from shared.events import NotificationRequested


def utcnow() -> datetime:
    """Now, in UTC, without tzinfo: how every ledger timestamp is stored (SQLite and PostgreSQL)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Entry:
    """A claimed notification: this worker holds its lease until the outcome is recorded."""

    key: str
    command: NotificationRequested
    attempts: int


@dataclass(frozen=True)
class Claim:
    """What one claim leased, and whether due rows may have been left behind."""

    entries: list[Entry]
    more: bool
    """True when rows that may be due were not taken: past the limit, a second row of one
    conversation, a row another worker leased first, or rows of the conversations in flight."""


@dataclass(frozen=True)
class Outcome:
    """The result of one delivery attempt, to be written with others in one transaction."""

    key: str
    state: str
    """SENT, DEAD, or PENDING for a retry at retry_at."""
    message_id: str | None = None
    provider_id: str | None = None
    retry_at: datetime | None = None
    error: str | None = None
    pull_forward: str | None = None
    """A channel whose relay is back: its pending rows in backoff become due now."""


def sent(
    key: str, *, message_id: str | None, provider_id: str | None, pull_forward: str | None = None
) -> Outcome:
    """The relay or provider accepted the message."""
    return Outcome(
        key, SENT, message_id=message_id, provider_id=provider_id, pull_forward=pull_forward
    )


def retry_later(key: str, *, delay_s: float, error: str) -> Outcome:
    """A transient failure: try again after delay_s."""
    return Outcome(key, PENDING, retry_at=utcnow() + timedelta(seconds=delay_s), error=error[:1000])


def dead(key: str, *, error: str) -> Outcome:
    """A permanent failure or exhausted retries: the row leaves the send queue for good."""
    return Outcome(key, DEAD, error=error[:1000])


# ---- statements ------------------------------------------------------------------------------

_PRIORITY_ORDER = case(
    (ledger.c.priority == "urgent", 0), (ledger.c.priority == "high", 1), else_=2
)
_FREE = or_(ledger.c.lease_until.is_(None), ledger.c.lease_until < bindparam("now"))

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
    select(ledger.c.idempotency_key, ledger.c.conversation_id, ledger.c.command, ledger.c.attempts)
    .where(
        ledger.c.channel == bindparam("channel"),
        ledger.c.state == PENDING,
        ledger.c.next_attempt_at <= bindparam("now"),
        _FREE,
        ledger.c.conversation_id.not_in(bindparam("busy", expanding=True)),
    )
    .order_by(_PRIORITY_ORDER, ledger.c.next_attempt_at, ledger.c.created_at)
    .limit(bindparam("n"))
    .with_for_update(skip_locked=True)
)
_LEASE = (
    update(ledger)
    .where(
        ledger.c.idempotency_key.in_(bindparam("keys", expanding=True)),
        ledger.c.state == PENDING,
        ledger.c.next_attempt_at <= bindparam("now"),
        _FREE,
    )
    .values(lease_until=bindparam("until"))
    .returning(ledger.c.idempotency_key)
)

_BY_KEY = ledger.c.idempotency_key == bindparam("k")
_MARK_SENT = (
    update(ledger)
    .where(_BY_KEY)
    .values(
        state=SENT,
        sent_at=bindparam("at"),
        message_id=bindparam("mid"),
        provider_id=bindparam("pid"),
        lease_until=null(),
        attempts=ledger.c.attempts + 1,
        last_error=null(),
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
        attempts=ledger.c.attempts + 1,
        last_error=bindparam("err"),
    )
)
_MARK_DEAD = (
    update(ledger)
    .where(_BY_KEY, ledger.c.state == PENDING)
    .values(
        state=DEAD,
        lease_until=null(),
        attempts=ledger.c.attempts + 1,
        last_error=bindparam("err"),
    )
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


# ---- units of work (one transaction each) -----------------------------------------------------


def record(conn: Connection, commands: Sequence[NotificationRequested]) -> set[str]:
    """Add commands to the ledger, in their order; the keys that were new (the others are
    redeliveries, or repeats within the batch, and are left alone)."""
    if not commands:
        return set()
    now = utcnow()
    # A microsecond apart: rows recorded together stay due in the order they were consumed.
    rows = [
        {
            "idempotency_key": cmd.idempotency_key,
            "kind": cmd.kind.value,
            "channel": cmd.channel.value,
            "priority": cmd.priority.value,
            "conversation_id": cmd.conversation_id,
            "command": cmd.model_dump(mode="json"),
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now + timedelta(microseconds=i),
            "created_at": now + timedelta(microseconds=i),
        }
        for i, cmd in enumerate(commands)
    ]
    return set(conn.scalars(_RECORD[conn.dialect.name], rows))


def claim(
    conn: Connection, channel: str, *, limit: int, busy: Collection[str], lease_s: float
) -> Claim:
    """Lease up to `limit` due rows of a channel, at most one per conversation, none of `busy`.

    Rows come most urgent first; a conversation's later rows wait for the next claim, after its
    first one is done. A row that another worker leased meanwhile is not returned.
    """
    now = utcnow()
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
    leased = set(
        conn.scalars(
            _LEASE,
            {
                "keys": [row.idempotency_key for row in chosen.values()],
                "now": now,
                "until": now + timedelta(seconds=lease_s),
            },
        )
    )
    entries = [
        Entry(
            key=row.idempotency_key,
            command=NotificationRequested.model_validate(row.command),
            attempts=row.attempts,
        )
        for row in chosen.values()
        if row.idempotency_key in leased
    ]
    more = len(rows) > len(entries) or bool(busy)
    return Claim(entries, more=more)


def apply_outcomes(conn: Connection, outcomes: Sequence[Outcome]) -> None:
    """Write a batch of delivery outcomes, then pull forward the retries of recovered lanes."""
    now = utcnow()
    marks = [
        {"k": o.key, "at": now, "mid": o.message_id, "pid": o.provider_id}
        for o in outcomes
        if o.state == SENT
    ]
    retries = [
        {"k": o.key, "at": o.retry_at, "err": o.error} for o in outcomes if o.state == PENDING
    ]
    buried = [{"k": o.key, "err": o.error} for o in outcomes if o.state == DEAD]
    for statement, params in ((_MARK_SENT, marks), (_RETRY_LATER, retries), (_MARK_DEAD, buried)):
        if params:
            conn.execute(statement, params)
    for channel in sorted({o.pull_forward for o in outcomes if o.pull_forward}):
        conn.execute(_RETRY_NOW, {"lane": channel, "now": now})


# ---- reads for the HTTP API and metrics -----------------------------------------------------


async def oldest_pending_age_s(session: AsyncSession) -> float:
    """Age in seconds of the oldest notification not yet sent (0 when none)."""
    oldest: datetime | None = (
        await session.execute(
            select(func.min(ledger.c.created_at)).where(ledger.c.state == PENDING)
        )
    ).scalar()
    if oldest is None:
        return 0.0
    if oldest.tzinfo is not None:
        # PostgreSQL (asyncpg) hands timestamptz back aware; asyncpg stored our naive UTC value
        # as local time, so converting back to local time recovers it.
        oldest = oldest.astimezone().replace(tzinfo=None)
    return max(0.0, (utcnow() - oldest).total_seconds())


async def counts(session: AsyncSession) -> dict[str, int]:
    """Number of ledger rows per state."""
    rows = await session.execute(select(ledger.c.state, func.count()).group_by(ledger.c.state))
    out = {PENDING: 0, SENT: 0, DEAD: 0}
    out.update({state: int(n) for state, n in rows})
    return out
