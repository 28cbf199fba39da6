"""A restored send ledger settled from refdesk.deliveries: the commands after the backup whose
outcome the broker holds are recorded as they ended, so their replay sends nothing again (an
outside review of a restore saw every email, text and the CARE Team's alert after T sent twice);
a command with no outcome, or only a queued one, is left for the replay to send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.notifier import ledger
from services.notifier.settle import settle
from services.notifier.tables import DEAD, PENDING, SENT
from services.notifier.tables import ledger as table
from shared.db import create_engine
from shared.events import (
    Channel,
    DeliveryState,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Priority,
)
from shared.syncdb import UnitRunner

NOW = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


def command(
    key: str, kind: NotificationKind = NotificationKind.CRISIS_ALERT
) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=key,
        kind=kind,
        channel=Channel.EMAIL,
        priority=Priority.URGENT,
        recipient="careteam@tccd.edu",
        conversation_id=f"c-{key}",
        context={"conversation_ref": f"c-{key}", "channel": "chat"},
        requested_at=NOW,
    )


def outcome(key: str, state: DeliveryState, **more: object) -> NotificationDelivered:
    return NotificationDelivered(
        idempotency_key=key,
        conversation_id=f"c-{key}",
        kind=NotificationKind.CRISIS_ALERT,
        channel=Channel.EMAIL,
        state=state,
        at=NOW + timedelta(seconds=2),
        **more,  # type: ignore[arg-type]
    )


async def test_outcomes_after_the_backup_are_recorded_and_their_replay_sends_nothing(
    ledger_url: str,
) -> None:
    db = UnitRunner(create_engine(ledger_url), name="test-ledger")
    try:
        # in the backup already: a row the restore kept stays as it is
        await db(lambda conn: ledger.record(conn, [command("kept")], now=NOW))
        commands = [command(k) for k in ("kept", "alert", "refused", "queued", "unsent")]
        outcomes = [
            outcome("kept", DeliveryState.SENT, message_id="<kept@refdesk>"),
            outcome("alert", DeliveryState.SENT, message_id="<alert@refdesk>", attempts=2),
            outcome("refused", DeliveryState.FAILED, reason="recipient refused", error_code=550),
            outcome("queued", DeliveryState.QUEUED),
            outcome("older", DeliveryState.SENT),  # its command before what was read
        ]
        settled = await db(lambda conn: settle(conn, commands, outcomes))
        assert (settled.outcomes, settled.written, settled.without_command) == (4, 2, 1)

        def rows(conn):  # type: ignore[no-untyped-def]
            found = conn.execute(
                select(
                    table.c.idempotency_key,
                    table.c.state,
                    table.c.message_id,
                    table.c.attempts,
                    table.c.reason,
                    table.c.outcome_published,
                )
            )
            return {r[0]: tuple(r[1:]) for r in found}

        got = await db(rows)
        assert got["kept"] == (PENDING, None, 0, None, False)
        assert got["alert"] == (SENT, "<alert@refdesk>", 2, None, True)
        assert got["refused"] == (DEAD, None, 1, "recipient refused", True)
        assert "queued" not in got and "unsent" not in got
        # the rewound notifier records the commands again: only those never settled are new
        replayed = await db(lambda conn: ledger.record(conn, commands, now=NOW))
        assert replayed == {"queued", "unsent"}
    finally:
        db.close()
