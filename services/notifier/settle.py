"""Settling a restored send ledger from the broker, before the notifier starts again.

A notifier database restored from a backup taken at T lacks the rows of every command recorded
after it. Rewinding the notifier's group to T (docs/operations.md) records those commands again,
and each was sent again: emails with the same Message-ID, texts as new texts, the CARE Team's
alert of a crisis already acknowledged among them (an outside review of a restore). Yet every
outcome after T is on refdesk.deliveries, under the command's own idempotency key.

`settle` writes those outcomes into the restored ledger first: each command after T whose
outcome is on the topic gets its row as it ended (sent, or failed for good), its outcome marked
published, so the replayed command finds its key recorded and nothing goes out again. A command
with no outcome on the topic (still pending when the backup was taken, or never tried) is left
for the replay to record and send: it was never sent, or the notifier could not say it was.
`refdesk settle-ledger` reads the two topics and calls it (refdesk_cli/settle.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection

from services.notifier.ledger import record
from services.notifier.tables import DEAD, SENT, ledger
from shared.events import DeliveryState, NotificationDelivered, NotificationRequested


@dataclass(frozen=True)
class Settled:
    """What a settling found and wrote."""

    outcomes: int
    """Final outcomes read (sent or failed for good)."""
    written: int
    """Ledger rows added for them (the others were in the ledger already)."""
    without_command: int
    """Outcomes whose command was not on the topic (older than what was read): left alone."""


_FINISH = (
    update(ledger)
    .where(ledger.c.idempotency_key == bindparam("key"))
    .values(
        state=bindparam("state"),
        attempts=bindparam("attempts"),
        message_id=bindparam("message_id"),
        sent_at=bindparam("sent_at"),
        finished_at=bindparam("at"),
        reason=bindparam("reason"),
        error_code=bindparam("error_code"),
        delivered_text=bindparam("delivered_text"),
        subject=bindparam("subject_sent"),
        segments=bindparam("segments"),
        outcome_published=True,
        lease_until=None,
    )
)


def settle(
    conn: Connection,
    commands: Sequence[NotificationRequested],
    outcomes: Sequence[NotificationDelivered],
) -> Settled:
    """Record each command that has a final outcome, as it ended (one transaction: the
    caller's). Rows the ledger has are left as they are."""
    final = {o.idempotency_key: o for o in outcomes if o.state is not DeliveryState.QUEUED}
    wanted = [c for c in commands if c.idempotency_key in final]
    by_key = {c.idempotency_key: c for c in wanted}
    new = record(conn, list(by_key.values()))
    rows = []
    for key in sorted(new):
        done = final[key]
        at = done.at
        sent = done.state is DeliveryState.SENT
        rows.append(
            {
                "key": key,
                "state": SENT if sent else DEAD,
                "attempts": done.attempts,
                "message_id": done.message_id,
                "sent_at": at if sent else None,
                "at": at,
                "reason": None if sent else (done.reason or "failed")[:64],
                "error_code": done.error_code,
                "delivered_text": done.text,
                "subject_sent": done.subject,
                "segments": done.segments,
            }
        )
    if rows:
        conn.execute(_FINISH, rows)
    return Settled(
        outcomes=len(final), written=len(rows), without_command=len(set(final) - set(by_key))
    )
