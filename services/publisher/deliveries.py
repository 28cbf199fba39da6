"""The webhook delivery log, which is also the retry queue: one row per (subscription, event).

Rows go pending -> delivered, or pending -> ... -> dead after the attempt limit. A worker
claims a due row by pushing its next_attempt_at past a lease, so two replicas never send
the same row at once; a crash mid-send only delays the row until the lease expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.publisher.subscriptions import signing_secrets
from services.publisher.tables import Delivery, Subscription
from shared.events import AnyEvent, derived_id
from shared.topics import PUBLIC

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATES = (PENDING, DELIVERED, DEAD)


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker may attempt now, with what it needs to sign and send."""

    id: str
    url: str
    secrets: tuple[str, ...]
    """The current secret first, then the previous one while a rotation's grace lasts."""
    payload: str
    attempts: int


def delivery_id(subscription_id: str, event_id: str) -> str:
    """The webhook-id of an event's delivery to a subscription (stable across retries)."""
    return "msg_" + derived_id("webhook", subscription_id, event_id).replace("-", "")


async def enqueue(
    session: AsyncSession, *, sub: Subscription, event: AnyEvent, payload: str, now: datetime
) -> bool:
    """Queue an event for a subscription; False when it already was (a redelivery)."""
    key = delivery_id(sub.id, event.id)
    if await session.get(Delivery, key) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                Delivery(
                    id=key,
                    subscription_id=sub.id,
                    event_id=event.id,
                    event_type=event.type,
                    event_time=event.time,
                    payload=payload,
                    state=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        return False  # another replica queued it first
    return True


async def due(
    session: AsyncSession, *, now: datetime, per_subscription: int, limit: int
) -> list[tuple[str, str]]:
    """(delivery id, subscription id) of pending deliveries whose next attempt is due, oldest
    first: at most `per_subscription` of each subscription, so one receiver's backlog never
    hides the others' due rows, and `limit` in all."""
    ranked = (
        select(
            Delivery.id,
            Delivery.subscription_id,
            Delivery.next_attempt_at,
            func.row_number()
            .over(
                partition_by=Delivery.subscription_id,
                order_by=(Delivery.next_attempt_at, Delivery.id),
            )
            .label("rank"),
        )
        .where(Delivery.state == PENDING, Delivery.next_attempt_at <= now)
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.id, ranked.c.subscription_id)
        .where(ranked.c.rank <= per_subscription)
        .order_by(ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )
    return [(key, sub) for key, sub in rows.all()]


async def claim(
    session: AsyncSession, key: str, *, now: datetime, lease_s: float
) -> Claimed | None:
    """Take a due delivery for lease_s seconds; None if it is not due or another worker has it."""
    result: Any = await session.execute(
        update(Delivery)
        .where(Delivery.id == key, Delivery.state == PENDING, Delivery.next_attempt_at <= now)
        .values(next_attempt_at=now + timedelta(seconds=lease_s), updated_at=now)
    )
    if result.rowcount != 1:
        await session.rollback()
        return None
    row = (
        await session.execute(
            select(Delivery, Subscription).join(Subscription).where(Delivery.id == key)
        )
    ).one()
    await session.commit()
    delivery, sub = row
    return Claimed(
        id=delivery.id,
        url=sub.url,
        secrets=signing_secrets(sub, now),
        payload=delivery.payload,
        attempts=delivery.attempts,
    )


async def record(
    session: AsyncSession,
    key: str,
    *,
    now: datetime,
    status: int | None,
    error: str | None,
    state: str,
    next_attempt_at: datetime | None = None,
) -> None:
    """Record one attempt's outcome: delivered, pending (retry at next_attempt_at) or dead."""
    values: dict[str, Any] = {
        "attempts": Delivery.attempts + 1,
        "last_status": status,
        "last_error": error[:500] if error else None,
        "state": state,
        "updated_at": now,
    }
    if state == DELIVERED:
        values["delivered_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    await session.execute(update(Delivery).where(Delivery.id == key).values(**values))
    await session.commit()


async def log(
    session: AsyncSession,
    *,
    subscription_id: str,
    state: str | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """A subscription's deliveries, newest event first."""
    query = select(Delivery).where(Delivery.subscription_id == subscription_id)
    if state:
        query = query.where(Delivery.state == state)
    rows = await session.execute(
        query.order_by(Delivery.event_time.desc(), Delivery.id).limit(limit)
    )
    return list(rows.scalars())


async def replay(
    session: AsyncSession,
    *,
    subscription_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> int:
    """Re-queue a subscription's delivered and dead deliveries of events in [start, end)."""
    result: Any = await session.execute(
        update(Delivery)
        .where(
            Delivery.subscription_id == subscription_id,
            Delivery.state != PENDING,
            Delivery.event_time >= start,
            Delivery.event_time < end,
        )
        .values(
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            last_error=None,
            delivered_at=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)


async def pending_count(session: AsyncSession) -> int:
    """How many deliveries are waiting."""
    count = await session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.state == PENDING)
    )
    return int(count or 0)


def view(row: Delivery) -> dict[str, Any]:
    """A delivery as the log shows it."""
    return {
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "event_time": row.event_time.isoformat(),
        "state": row.state,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.state == PENDING else None,
        "created_at": row.created_at.isoformat(),
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
    }


FINISHED_KEEP_DAYS = PUBLIC.retention_days or 365
"""How long a delivered or dead delivery is kept, by its event's time: as long as the public
stream keeps the event (a replay re-queues these rows; older ones could not be sent again)."""


async def purge_finished(session: AsyncSession, *, now: datetime, limit: int = 5000) -> int:
    """Delete up to `limit` delivered or dead deliveries of events older than
    FINISHED_KEEP_DAYS (the table had grown by a row per event and subscription for good);
    the caller commits. How many."""
    cutoff = now - timedelta(days=FINISHED_KEEP_DAYS)
    old = (
        select(Delivery.id)
        .where(Delivery.state.in_((DELIVERED, DEAD)), Delivery.event_time < cutoff)
        .limit(limit)
        .scalar_subquery()
    )
    result: Any = await session.execute(delete(Delivery).where(Delivery.id.in_(old)))
    return int(result.rowcount or 0)
