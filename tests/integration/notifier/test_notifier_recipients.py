"""SMS rows keep a keyed hash of the number on a real database (SQLite file, and PostgreSQL
where configured): the same number has the same hash in every conversation and the number is
not in it, a lookup finds every text attributed to the number whatever the conversation, one
key serves every replica, and migration 0007 hashes the rows a lookup can still meet."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from services.notifier import ledger, ledger_outcomes, recipients
from services.notifier.tables import PENDING, SENT, ledger_keys
from services.notifier.tables import ledger as table
from shared.clock import utcnow
from shared.db import create_engine, migrate
from shared.events import Channel, NotificationKind, NotificationRequested
from shared.syncdb import UnitRunner

from .notifier_env import command

LEASE_S = 60.0
ANA, BEN = "+18175550123", "+18175550199"


def text(number: str = ANA) -> NotificationRequested:
    """An after-hours text in a conversation of its own: the same body every time."""
    return command(
        NotificationKind.AFTER_HOURS_ACK,
        channel=Channel.SMS,
        recipient=number,
        context={"text": "The desk is closed; we answer at 8 am."},
    )


@pytest.fixture
async def runner(database_url: str) -> AsyncIterator[UnitRunner]:
    engine = create_engine(database_url)
    await migrate(engine, "notifier")
    made = UnitRunner(engine, name="test-ledger")
    yield made
    made.close()
    await engine.dispose()


async def hashes(runner: UnitRunner) -> dict[str, str | None]:
    rows = await runner(
        lambda conn: conn.execute(select(table.c.idempotency_key, table.c.recipient_hash)).all()
    )
    return dict(rows)


async def test_an_sms_row_keeps_a_keyed_hash_of_the_number_the_same_in_every_conversation(
    runner: UnitRunner,
) -> None:
    first, again, other = text(), text(), text(BEN)
    mail = command(recipient="ana.gomez@my.tccd.edu")
    assert first.conversation_id != again.conversation_id
    await runner(lambda conn: ledger.record(conn, [first, again, other, mail]))
    kept = await hashes(runner)
    key = await runner(recipients.ledger_key)
    assert kept[first.idempotency_key] == kept[again.idempotency_key]
    assert kept[first.idempotency_key] == recipients.recipient_hash(ANA, key)
    assert kept[other.idempotency_key] not in (None, kept[first.idempotency_key])
    assert kept[mail.idempotency_key] is None
    unkeyed = hashlib.sha256(ANA.encode()).hexdigest()
    assert kept[first.idempotency_key] != unkeyed and ANA[1:] not in str(kept)


async def test_a_lookup_meets_every_text_of_the_number_whatever_the_conversation(
    runner: UnitRunner,
) -> None:
    now = utcnow()
    sent, in_parts, other, long_ago = text(), text(), text(BEN), text()
    await runner(lambda conn: ledger.record(conn, [long_ago], now=now - timedelta(hours=2)))
    await runner(lambda conn: ledger.record(conn, [sent, in_parts, other], now=now))
    for cmd, sid, at in (
        (long_ago, "SM-long-ago", now - timedelta(hours=2)),
        (sent, "SM-sent", now),
        (other, "SM-other-number", now),
    ):
        outcome = ledger_outcomes.sent(
            cmd.idempotency_key, ledger_outcomes.Delivered(provider_id=sid), at=at
        )
        await runner(
            lambda conn, o=outcome: ledger_outcomes.apply_outcomes(
                conn, [o], lease_s=LEASE_S, now=now
            )
        )
    progress = {"chars": 1600, "sids": ["SM-part-1"], "budget": 1600, "segments": 11}
    await runner(
        lambda conn: ledger_outcomes.save_progress(
            conn, in_parts.idempotency_key, progress=progress, lease_s=LEASE_S, now=now
        )
    )
    key = await runner(recipients.ledger_key)
    since = now - timedelta(minutes=1)
    taken = await runner(
        lambda conn: recipients.ids_taken(conn, recipients.recipient_hash(ANA, key), since=since)
    )
    assert taken == {"SM-sent", "SM-part-1"}


async def test_replicas_making_the_key_at_once_agree_on_one(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(3)]
    await migrate(engines[0], "notifier")
    runners = [UnitRunner(engine, name=f"replica-{i}") for i, engine in enumerate(engines)]
    try:
        await runners[0](lambda conn: conn.execute(delete(ledger_keys)))
        keys = await asyncio.gather(*(runner(recipients.ledger_key) for runner in runners))
        assert len(set(keys)) == 1 and len(keys[0]) == 32
        assert await runners[0](recipients.ledger_key) == keys[0]
    finally:
        for runner in runners:
            runner.close()
        for engine in engines:
            await engine.dispose()


def before_0007(cmd: NotificationRequested, state: str, at: datetime) -> dict[str, Any]:
    """A ledger row as revision 0006 wrote it."""
    return {
        "idempotency_key": cmd.idempotency_key,
        "kind": cmd.kind.value,
        "channel": cmd.channel.value,
        "priority": cmd.priority.value,
        "priority_rank": 2,
        "conversation_id": cmd.conversation_id,
        "command": cmd.model_dump(mode="json"),
        "state": state,
        "attempts": 0 if state == PENDING else 1,
        "next_attempt_at": at,
        "created_at": at,
        "sent_at": None if state == PENDING else at,
        "finished_at": None if state == PENDING else at,
        "provider_id": None if state == PENDING else f"SM-{cmd.idempotency_key}",
        "outcome_published": state != PENDING,
    }


async def test_migration_0007_hashes_the_rows_a_lookup_can_still_meet(database_url: str) -> None:
    engine = create_engine(database_url)
    runner = UnitRunner(engine, name="test-ledger")
    try:
        await migrate(engine, "notifier", "notifier_0006")
        now = utcnow()
        waiting, just_sent, other, mail, last_month = (
            text(),
            text(),
            text(BEN),
            command(),
            text(),
        )
        rows = [
            before_0007(waiting, PENDING, now),
            before_0007(just_sent, SENT, now - timedelta(seconds=5)),
            before_0007(other, SENT, now - timedelta(minutes=3)),
            before_0007(mail, SENT, now),
            before_0007(last_month, SENT, now - timedelta(days=30)),
        ]
        await runner(lambda conn: conn.execute(insert(table), rows))
        runner.close()
        await migrate(engine, "notifier")
        runner = UnitRunner(engine, name="test-ledger")
        key = await runner(recipients.ledger_key)
        kept = await hashes(runner)
        ana, ben = recipients.recipient_hash(ANA, key), recipients.recipient_hash(BEN, key)
        assert kept == {
            waiting.idempotency_key: ana,
            just_sent.idempotency_key: ana,
            other.idempotency_key: ben,
            mail.idempotency_key: None,
            last_month.idempotency_key: None,  # no lookup reaches back a month
        }
        taken = await runner(
            lambda conn: recipients.ids_taken(conn, ana, since=now - timedelta(minutes=1))
        )
        assert taken == {f"SM-{just_sent.idempotency_key}"}
    finally:
        runner.close()
        await engine.dispose()
