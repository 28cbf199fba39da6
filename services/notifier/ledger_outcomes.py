"""Delivery outcomes as the send ledger writes them: sent, retry later, or dead.

A delivery's result is an `Outcome` (`sent`, `retry_later`, `dead`); the outcomes of the
deliveries finishing together are written in one transaction (`apply_outcomes`, grouped by
ledger_work.py). Each final outcome (sent or dead) is written with what was delivered,
`outcome_published` false and a lease held by the worker that announces it on
refdesk.deliveries (outbox.py). A retry is the row scheduled for later; a row that another
worker finished after this worker's lease ran out keeps its outcome. A lane whose provider is
back pulls its retries forward (`pull_forward`), except those waiting out a rate limit
(`not_before`): a success says the provider is up, not that its limit has lifted. A text sent
in parts records each part before the next (`save_progress`), renewing the row's lease.

Units of work over one `Connection`, their statements built once, as in ledger.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, bindparam, false, func, null, or_, update
from sqlalchemy.engine import Connection

from services.notifier.tables import DEAD, PENDING, SENT, ledger
from shared.clock import utcnow
from shared.db import UTCDateTime


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
    error_code: int | None = None
    """DEAD: the provider's code for refusing the message (Twilio's error code), announced."""
    pull_forward: str | None = None
    """A channel whose relay is back: its pending rows in backoff become due now."""
    at: datetime | None = None
    """When it happened (naive UTC); unset: when it is written."""
    in_doubt_since: datetime | None = None
    """PENDING: the attempt that failed may have reached the provider; it began then."""
    counts: bool = True
    """PENDING: whether the failed attempt counts against the notification's attempts."""
    held: bool = False
    """PENDING: the provider asked us to wait (a rate limit): no lane's recovery pulls this
    retry forward before its time (`not_before`)."""
    progress: dict[str, Any] | None = None
    """SENT: the parts of an SMS sent in parts (kept with the row); PENDING: an email's copies
    the relay took without confirming them ({"unconfirmed": n})."""


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
    held: bool = False,
    progress: dict[str, Any] | None = None,
) -> Outcome:
    """A transient failure: try again after delay_s. `in_doubt_since`: when the attempt began,
    if it may have reached the provider; `counts`: False for a failure that must not use up
    the attempts (the provider refused the credentials); `held`: True when the provider asked
    for the wait (a rate limit), which a lane's recovery must not cut short; `progress`: what
    the row keeps of the attempts (an email's copies the relay took unconfirmed), or None to
    keep what it has."""
    return Outcome(
        key,
        PENDING,
        retry_after_s=delay_s,
        error=error[:1000],
        in_doubt_since=in_doubt_since,
        counts=counts,
        held=held,
        progress=progress,
    )


def dead(
    key: str,
    *,
    error: str,
    reason: str,
    delivered: Delivered = NOTHING,
    at: datetime | None = None,
    error_code: int | None = None,
) -> Outcome:
    """A permanent failure or exhausted retries: the row leaves the send queue for good.
    `error_code`: the provider's code for refusing it, if it gave one."""
    return Outcome(
        key,
        DEAD,
        delivered=delivered,
        error=error[:1000],
        reason=reason[:64],
        at=at,
        error_code=error_code,
    )


# ---- statements ------------------------------------------------------------------------------

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
        # a rate limit's wait: the retry's time, which no recovery pulls forward (else null)
        not_before=bindparam("floor", type_=UTCDateTime()),
        progress=func.coalesce(_PROGRESS, ledger.c.progress),
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
    .values(
        state=DEAD,
        last_error=bindparam("err"),
        reason=bindparam("reason"),
        error_code=bindparam("code"),
        **_FINAL,
    )
)
# A lane's provider is back: its retries in backoff are due now, except a rate limit's wait.
_RETRY_NOW = (
    update(ledger)
    .where(
        ledger.c.channel == bindparam("lane"),
        ledger.c.state == PENDING,
        ledger.c.next_attempt_at > bindparam("now"),
        or_(ledger.c.not_before.is_(None), ledger.c.not_before <= bindparam("now")),
    )
    .values(next_attempt_at=bindparam("now"))
)

# ---- units of work (one transaction each) -----------------------------------------------------


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

    def retry(o: Outcome) -> dict[str, Any]:
        at = now + timedelta(seconds=o.retry_after_s or 0.0)
        return {
            "k": o.key,
            "at": at,
            "err": o.error,
            "inc": 1 if o.counts else 0,
            "doubt": o.in_doubt_since,
            "floor": at if o.held else None,
            "progress": o.progress,
        }

    retries = [retry(o) for o in outcomes if o.state == PENDING]
    buried = [
        final(o) | {"err": o.error, "reason": o.reason, "code": o.error_code}
        for o in outcomes
        if o.state == DEAD
    ]
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
