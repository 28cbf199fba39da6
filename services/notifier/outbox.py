"""The ledger as an outbox of delivery outcomes (announced on refdesk.deliveries).

A final outcome is written (ledger_outcomes.apply_outcomes) with `outcome_published` false and
a lease held by the worker that wrote it, which announces it and then sets the flag
(`mark_announced`, in its next unit of work).
An announcement lost to a crash or a broker outage is taken up again, once its lease has run
out, by any worker (`claim_unannounced`), from what the row keeps: the announcement is the same
however often it is made. Units of work over one `Connection`, as in ledger.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, false, null, select, true, update
from sqlalchemy.engine import Connection

from services.notifier.ledger import LEASE_FREE
from services.notifier.ledger_outcomes import Delivered
from services.notifier.tables import UNANNOUNCED, ledger
from shared.clock import utcnow
from shared.events import NotificationRequested


@dataclass(frozen=True)
class Finished:
    """A final outcome waiting to be announced (or announced again)."""

    command: NotificationRequested
    state: str
    attempts: int
    finished_at: datetime
    reason: str | None
    delivered: Delivered
    error_code: int | None = None
    """A refusal: the provider's code for it (Twilio's error code), if it gave one."""


# ---- statements ------------------------------------------------------------------------------

_UNANNOUNCED = (
    select(
        ledger.c.idempotency_key,
        ledger.c.command,
        ledger.c.state,
        ledger.c.attempts,
        ledger.c.finished_at,
        ledger.c.reason,
        ledger.c.error_code,
        ledger.c.delivered_text,
        ledger.c.subject,
        ledger.c.segments,
        ledger.c.message_id,
        ledger.c.provider_id,
    )
    .where(
        UNANNOUNCED,
        ledger.c.channel == bindparam("channel"),
        LEASE_FREE,
    )
    .order_by(ledger.c.finished_at)
    .limit(bindparam("n"))
    .with_for_update(skip_locked=True)
)
_LEASE_FINAL = (
    update(ledger)
    .where(
        ledger.c.idempotency_key.in_(bindparam("keys", expanding=True)),
        ledger.c.outcome_published == false(),
        LEASE_FREE,
    )
    .values(lease_until=bindparam("until"))
    .returning(ledger.c.idempotency_key)
)
_ANNOUNCED = (
    update(ledger)
    .where(ledger.c.idempotency_key.in_(bindparam("keys", expanding=True)))
    .values(outcome_published=true(), lease_until=null())
)


# ---- units of work (one transaction each) -----------------------------------------------------


def claim_unannounced(
    conn: Connection, channel: str, *, limit: int, lease_s: float, now: datetime | None = None
) -> list[Finished]:
    """Lease up to `limit` final outcomes of a channel that were never announced and that no
    worker holds (their announcer died, or the broker did not take the announcement)."""
    now = now or utcnow()
    rows = conn.execute(_UNANNOUNCED, {"channel": channel, "now": now, "n": limit}).all()
    if not rows:
        return []
    leased = set(
        conn.scalars(
            _LEASE_FINAL,
            {
                "keys": [row.idempotency_key for row in rows],
                "now": now,
                "until": now + timedelta(seconds=lease_s),
            },
        )
    )
    return [
        Finished(
            command=NotificationRequested.model_validate(row.command),
            state=row.state,
            attempts=row.attempts,
            finished_at=row.finished_at or now,
            reason=row.reason,
            delivered=Delivered(
                text=row.delivered_text,
                subject=row.subject,
                segments=row.segments,
                message_id=row.message_id,
                provider_id=row.provider_id,
            ),
            error_code=row.error_code,
        )
        for row in rows
        if row.idempotency_key in leased
    ]


def mark_announced(conn: Connection, keys: Sequence[str]) -> None:
    """The broker has these outcomes' announcements: never announce them again."""
    if keys:
        conn.execute(_ANNOUNCED, {"keys": list(keys)})
