"""The send ledger keeps student data (the recipient, the circulation email's name, TCC ID and
question, the text as delivered) no longer than REFDESK_TRANSCRIPT_RETENTION_DAYS, and never
purges a row while its command could still be read again from refdesk.notifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from services.notifier import ledger
from services.notifier.tables import DEAD, SENT
from services.notifier.tables import ledger as table
from shared.db import create_engine
from shared.events import Channel, NotificationKind, NotificationRequested, Priority
from shared.syncdb import UnitRunner

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def command(n: int) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=f"k-{n}",
        kind=NotificationKind.CIRCULATION_EMAIL,
        channel=Channel.EMAIL,
        priority=Priority.NORMAL,
        recipient="circulation@tccd.edu",
        conversation_id=f"c-{n}",
        context={
            "conversation_ref": f"c-{n}",
            "channel": "sms",
            "patron_name": "Ana Gomez",
            "tcc_id": "2223334",
            "question": "I lost a book",
            "patron_contact": "+18175550123",
        },
        requested_at=NOW,
    )


def test_the_cutoff_is_the_retention_but_never_inside_the_topics_own() -> None:
    assert ledger.retention_cutoff(NOW, retention_days=365, topic_days=7) == NOW - timedelta(365)
    # a retention of a day would purge rows whose commands may still be replayed: 8 days
    assert ledger.retention_cutoff(NOW, retention_days=1, topic_days=7) == NOW - timedelta(8)


async def test_rows_past_the_retention_are_purged_and_only_those(ledger_url: str) -> None:
    db = UnitRunner(create_engine(ledger_url), name="test-ledger")
    try:
        await db(lambda conn: ledger.record(conn, [command(n) for n in range(5)], now=NOW))
        old = NOW - timedelta(days=400)
        states = {
            "k-0": (SENT, old, True),  # sent long ago, announced: purged
            "k-1": (DEAD, old, True),  # given up long ago, announced: purged
            "k-2": (SENT, old, False),  # its outcome not yet announced: kept
            "k-3": (SENT, NOW - timedelta(days=10), True),  # within the retention: kept
            # k-4 stays pending: kept whatever its age
        }

        def finish(conn) -> None:  # type: ignore[no-untyped-def]
            for key, (state, at, announced) in states.items():
                conn.execute(
                    update(table)
                    .where(table.c.idempotency_key == key)
                    .values(
                        state=state,
                        finished_at=at,
                        outcome_published=announced,
                        delivered_text="Patron Ana Gomez, TCC ID 2223334",
                    )
                )

        await db(finish)
        cutoff = ledger.retention_cutoff(NOW, retention_days=365, topic_days=7)
        assert await db(lambda conn: ledger.purge_finished(conn, cutoff=cutoff)) == 2
        assert await db(lambda conn: ledger.purge_finished(conn, cutoff=cutoff)) == 0
        left = await db(lambda conn: set(conn.scalars(select(table.c.idempotency_key))))
        assert left == {"k-2", "k-3", "k-4"}
    finally:
        db.close()
