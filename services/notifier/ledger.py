"""Send-ledger operations: commands recorded, due rows claimed, and the ledger's reads.

The ledger makes each notification's effect happen once. A command is recorded (idempotently,
by key) before its offset is committed; a lane worker then claims due rows with a lease,
delivers them and records the outcomes (ledger_outcomes.py). A crash between the relay
accepting a message and the ledger write leaves the row pending, so it is sent again with the
same Message-ID (docs/reliability.md). That claim finds the lease it took over run out without
an outcome and marks the row in doubt (`in_doubt_since`), as a retry after a lost answer does:
the SMS lane then asks Twilio before sending again (sms_delivery.py).

Times are naive UTC. Every unit takes the caller's `now` (the service's clock), so tests can
move time; it defaults to the wall clock.

The hot operations (record, claim, outcomes) are synchronous SQLAlchemy Core functions over
one `Connection`, each meant to run as one transaction (`shared.syncdb.UnitRunner`). Their
statements are built once, here and in ledger_outcomes.py: building a construct costs more
than SQLite takes to run it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import recipients
from services.notifier.tables import DEAD, IS_PENDING, PENDING, PRIORITY_RANK, SENT, ledger
from shared.clock import utcnow
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


# ---- retention ------------------------------------------------------------------------------

PURGE_BATCH = 500


def retention_cutoff(now: datetime, *, retention_days: int, topic_days: int) -> datetime:
    """Rows finished before this are purged: the desk's retention, and never sooner than a day
    after the commands left refdesk.notifications (a row is also the command's idempotency
    record: one purged while its command could still be read again would be sent again)."""
    return now - timedelta(days=max(retention_days, topic_days + 1))


def purge_finished(conn: Connection, *, cutoff: datetime, limit: int = PURGE_BATCH) -> int:
    """Delete up to `limit` rows sent or given up on before `cutoff` whose outcome was announced:
    the command (recipient, patron name, TCC ID, question) and the text as delivered go with
    them. Returns how many."""
    keys = (
        conn.execute(
            select(ledger.c.idempotency_key)
            .where(
                ledger.c.state != PENDING,
                ledger.c.outcome_published.is_(True),
                ledger.c.finished_at < cutoff,
            )
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if keys:
        conn.execute(delete(ledger).where(ledger.c.idempotency_key.in_(keys)))
    return len(keys)


# ---- erasure --------------------------------------------------------------------------------


def erase(conn: Connection, conversation_ids: Collection[str]) -> list[str]:
    """A patron's conversations erased on their request (status's `desk.erased`): the messages
    sent in them, as sent, are blanked now rather than at the retention. Each row stays, with
    its key, kind, state and times, as the command's idempotency record (a command read again
    from the topic is still not sent twice); its command becomes its kind and conversation, and
    the recipient, the text as delivered, the subject, the last error and the number's hash go.
    Only rows whose outcome is final and announced are blanked (a conversation is erased only
    once closed, so a message still to send is one its close asked for: a survey); returns their
    idempotency keys."""
    if not conversation_ids:
        return []
    settled = conn.execute(
        select(ledger.c.idempotency_key, ledger.c.kind, ledger.c.conversation_id).where(
            ledger.c.conversation_id.in_(sorted(set(conversation_ids))),
            ledger.c.state != PENDING,
            ledger.c.outcome_published.is_(True),
        )
    ).all()
    for key, kind, conversation_id in settled:
        conn.execute(
            update(ledger)
            .where(ledger.c.idempotency_key == key)
            .values(
                command={"kind": kind, "conversation_id": conversation_id, "erased": True},
                delivered_text=None,
                subject=None,
                last_error=None,
                recipient_hash=None,
                progress=None,
            )
        )
    return [key for key, _kind, _conversation in settled]


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
