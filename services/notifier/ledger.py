"""Send-ledger operations. The ledger makes each notification's effect happen once.

A command is recorded (idempotently, by key) before its offset is committed; a lane worker
then claims a due row with a lease, delivers it and records the outcome. A crash between
the relay accepting a message and the ledger write leaves the row pending, so it is sent
again with the same Message-ID (docs/reliability.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.tables import DEAD, PENDING, SENT, ledger
from shared.events import NotificationRequested


def utcnow() -> datetime:
    """Now, in UTC, without tzinfo: how every ledger timestamp is stored (SQLite and PostgreSQL)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Entry:
    key: str
    command: NotificationRequested
    attempts: int


async def record(session: AsyncSession, command: NotificationRequested) -> bool:
    """Add a command to the ledger; False when its key is already there (a redelivery)."""
    exists = await session.execute(
        select(ledger.c.idempotency_key).where(ledger.c.idempotency_key == command.idempotency_key)
    )
    if exists.first() is not None:
        return False
    now = utcnow()
    await session.execute(insert(ledger).values(
        idempotency_key=command.idempotency_key, kind=command.kind.value,
        channel=command.channel.value, priority=command.priority.value,
        conversation_id=command.conversation_id, command=command.model_dump(mode="json"),
        state=PENDING, attempts=0, next_attempt_at=now, created_at=now,
    ))
    return True


_PRIORITY_ORDER = case(
    (ledger.c.priority == "urgent", 0), (ledger.c.priority == "high", 1), else_=2
)


def _claimable(now: datetime) -> Any:
    return and_(
        ledger.c.state == PENDING, ledger.c.next_attempt_at <= now,
        or_(ledger.c.lease_until.is_(None), ledger.c.lease_until < now),
    )


async def due(session: AsyncSession, channel: str, *, limit: int = 50) -> list[str]:
    """Keys of pending notifications on a channel that may be attempted now, most urgent first."""
    now = utcnow()
    rows = await session.execute(
        select(ledger.c.idempotency_key)
        .where(ledger.c.channel == channel, _claimable(now))
        .order_by(_PRIORITY_ORDER, ledger.c.next_attempt_at)
        .limit(limit)
    )
    return [r[0] for r in rows]


async def claim(session: AsyncSession, key: str, *, lease_s: float) -> Entry | None:
    """Take a lease on one due row so that no other worker sends it meanwhile."""
    now = utcnow()
    result = await session.execute(
        update(ledger).where(ledger.c.idempotency_key == key, _claimable(now))
        .values(lease_until=now + timedelta(seconds=lease_s))
    )
    if result.rowcount != 1:
        await session.rollback()
        return None
    row = (await session.execute(
        select(ledger.c.command, ledger.c.attempts).where(ledger.c.idempotency_key == key)
    )).one()
    await session.commit()
    command = NotificationRequested.model_validate(row.command)
    return Entry(key=key, command=command, attempts=row.attempts)


async def mark_sent(session: AsyncSession, key: str, *, message_id: str | None,
                    provider_id: str | None) -> None:
    """The relay or provider accepted the message."""
    await session.execute(update(ledger).where(ledger.c.idempotency_key == key).values(
        state=SENT, sent_at=utcnow(), message_id=message_id, provider_id=provider_id,
        lease_until=None, attempts=ledger.c.attempts + 1, last_error=None,
    ))
    await session.commit()


async def retry_later(session: AsyncSession, key: str, *, delay_s: float, error: str) -> None:
    """A transient failure: try again after delay_s."""
    await session.execute(update(ledger).where(ledger.c.idempotency_key == key).values(
        next_attempt_at=utcnow() + timedelta(seconds=delay_s), lease_until=None,
        attempts=ledger.c.attempts + 1, last_error=error[:1000],
    ))
    await session.commit()


async def retry_now(session: AsyncSession, channel: str) -> None:
    """Make every pending notification of a lane due now (after its relay came back)."""
    await session.execute(update(ledger).where(
        ledger.c.channel == channel, ledger.c.state == PENDING, ledger.c.next_attempt_at > utcnow(),
    ).values(next_attempt_at=utcnow()))
    await session.commit()


async def mark_dead(session: AsyncSession, key: str, *, error: str) -> None:
    """A permanent failure or exhausted retries: the row leaves the send queue for good."""
    await session.execute(update(ledger).where(ledger.c.idempotency_key == key).values(
        state=DEAD, lease_until=None, attempts=ledger.c.attempts + 1, last_error=error[:1000],
    ))
    await session.commit()


async def oldest_pending_age_s(session: AsyncSession) -> float:
    """Age in seconds of the oldest notification not yet sent (0 when none)."""
    oldest: datetime | None = (await session.execute(
        select(func.min(ledger.c.created_at)).where(ledger.c.state == PENDING)
    )).scalar()
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
