"""The send ledger's claims and outcomes on a real database (SQLite file, and PostgreSQL where
configured): leases taken together are never shared between workers, a conversation gives one
row per claim, most urgent first, and outcomes land on the right rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.notifier import ledger, ledger_outcomes, outbox
from services.notifier.tables import DEAD, PENDING, SENT
from services.notifier.tables import ledger as table
from shared.clock import utcnow
from shared.db import create_engine, migrate
from shared.events import NotificationRequested, Priority
from shared.syncdb import UnitRunner

from .notifier_env import command

LEASE_S = 60.0
FINAL = ("until", "mid", "pid", "text", "subject", "segments")
"""The values a final outcome writes besides its key and time."""


@pytest.fixture
async def runners(database_url: str) -> AsyncIterator[tuple[UnitRunner, UnitRunner]]:
    """Two workers on one migrated ledger, each with its own engine and connection."""
    engines = [create_engine(database_url), create_engine(database_url)]
    await migrate(engines[0], "notifier")
    pair = (UnitRunner(engines[0], name="worker-a"), UnitRunner(engines[1], name="worker-b"))
    yield pair
    for runner in pair:
        runner.close()
    for engine in engines:
        await engine.dispose()


def in_conversation(conversation_id: str, **kw: Any) -> NotificationRequested:
    return command(**kw).model_copy(update={"conversation_id": conversation_id})


async def claim(
    runner: UnitRunner, *, limit: int = 8, busy: list[str] | None = None
) -> ledger.Claim:
    return await runner(
        lambda conn: ledger.claim(conn, "email", limit=limit, busy=busy or [], lease_s=LEASE_S)
    )


async def test_two_workers_claiming_at_once_never_lease_the_same_row(
    runners: tuple[UnitRunner, UnitRunner],
) -> None:
    commands = [command() for _ in range(300)]
    await runners[0](lambda conn: ledger.record(conn, commands))
    taken: dict[str, list[str]] = {"a": [], "b": []}

    async def work(name: str, runner: UnitRunner) -> None:
        while True:
            got = await claim(runner)
            taken[name].extend(entry.key for entry in got.entries)
            if not got.entries and not got.more:
                return
            await asyncio.sleep(0)

    await asyncio.gather(work("a", runners[0]), work("b", runners[1]))
    keys = taken["a"] + taken["b"]
    assert len(keys) == len(set(keys)), "a row was leased by both workers"
    assert set(keys) == {cmd.idempotency_key for cmd in commands}
    if runners[0].engine.dialect.name == "postgresql":
        # SKIP LOCKED hands each worker other rows. SQLite has one writer at a time and both
        # workers read the same head of the queue: one whose every lease came second (the
        # other's update re-checked first) takes nothing, which is allowed.
        assert taken["a"] and taken["b"], taken


async def test_a_claim_takes_the_most_urgent_first_and_one_row_per_conversation(
    runners: tuple[UnitRunner, UnitRunner],
) -> None:
    db = runners[0]
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    handoff, survey = in_conversation(conversation), in_conversation(conversation)
    other = command()
    urgent = command(priority=Priority.URGENT)
    await db(lambda conn: ledger.record(conn, [handoff, survey, other, urgent]))
    # a redelivery changes nothing
    assert await db(lambda conn: ledger.record(conn, [survey])) == set()

    first = await claim(db)
    assert [e.key for e in first.entries] == [
        urgent.idempotency_key,
        handoff.idempotency_key,
        other.idempotency_key,
    ]
    assert first.more  # the survey was left for later
    assert first.entries[1].command == handoff and first.entries[1].attempts == 0

    # while the hand-off is in flight, its conversation gives nothing
    assert (await claim(db, busy=[conversation])).entries == []
    # rows under lease are not claimed again
    again = await claim(db)
    assert [e.key for e in again.entries] == [survey.idempotency_key]
    assert not (await claim(db)).more

    limited = command()
    await db(lambda conn: ledger.record(conn, [limited, command()]))
    one = await claim(db, limit=1)
    assert [e.key for e in one.entries] == [limited.idempotency_key] and one.more


async def test_a_claim_reads_due_rows_in_index_order_however_many_wait(
    runners: tuple[UnitRunner, UnitRunner],
) -> None:
    """After an outage thousands of rows wait: the claim must not sort them all each time
    (it did, ~20 ms per claim at 12,000 rows, paid once per email)."""
    db = runners[0]
    waiting = [command() for _ in range(2_000)] + [command(priority=Priority.HIGH)]
    await db(lambda conn: ledger.record(conn, waiting))
    if db.engine.dialect.name == "sqlite":
        values = {"channel": "email", "now": utcnow().isoformat(" "), "busy": ["x"], "n": 3}
        steps = await plan(db, ledger._DUE, values)
        assert "ix_send_ledger_claim" in steps and "TEMP B-TREE" not in steps, steps
    got = await claim(db, limit=2)
    assert [e.key for e in got.entries] == [waiting[-1].idempotency_key, waiting[0].idempotency_key]


async def plan(db: UnitRunner, statement: Any, values: dict[str, Any]) -> str:
    """SQLite's query plan for a statement with these values, its steps joined."""
    compiled = statement.compile(db.engine.sync_engine).construct_expanded_state(values)
    args = tuple(compiled.parameters[name] for name in compiled.positiontup or ())
    rows = await db(
        lambda conn: conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.statement}", args).all()
    )
    return " | ".join(str(row[-1]) for row in rows)


async def test_the_ledgers_updates_and_sweeps_read_their_rows_not_every_pending_one(
    runners: tuple[UnitRunner, UnitRunner],
) -> None:
    """With indexes led by `state` and `outcome_published`, SQLite served the lease update from
    them and read every pending row per claim (11.5 ms at 12,000 waiting, once per email while a
    backlog drained), and each lane's sweep read and sorted them all every second."""
    db = runners[0]
    waiting = [command() for _ in range(2_000)]
    await db(lambda conn: ledger.record(conn, waiting))
    if db.engine.dialect.name == "sqlite":
        now = utcnow().isoformat(" ")
        keys = [cmd.idempotency_key for cmd in waiting[:16]]
        lease = await plan(db, ledger._LEASE, {"keys": keys, "now": now, "until": now})
        assert "sqlite_autoindex_send_ledger_1 (idempotency_key=?)" in lease, lease
        for statement, values in (
            (
                ledger_outcomes._RETRY_LATER,
                {"k": keys[0], "at": now, "err": "451", "inc": 1, "doubt": None, "floor": None}
                | {"progress": None},
            ),
            (
                ledger_outcomes._MARK_SENT,
                dict.fromkeys(FINAL, None) | {"k": keys[0], "at": now, "progress": None},
            ),
            (ledger_outcomes._SAVE_PROGRESS, {"k": keys[0], "progress": "{}", "until": now}),
            (outbox._ANNOUNCED, {"keys": keys}),
            (outbox._LEASE_FINAL, {"keys": keys, "now": now, "until": now}),
        ):
            steps = await plan(db, statement, values)
            assert "(idempotency_key=?)" in steps, steps
        # and the sweep for lost announcements reads final rows only, in its order
        sweep = await plan(db, outbox._UNANNOUNCED, {"channel": "email", "now": now, "n": 100})
        assert "ix_send_ledger_unannounced" in sweep and "TEMP B-TREE" not in sweep, sweep
        oldest = await plan(db, ledger._OLDEST_PENDING, {})
        assert "ix_send_ledger_pending" in oldest, oldest
    got = await claim(db, limit=16)
    assert [e.key for e in got.entries] == [cmd.idempotency_key for cmd in waiting[:16]]


async def test_outcomes_are_written_together_and_only_to_their_rows(
    runners: tuple[UnitRunner, UnitRunner],
) -> None:
    db = runners[0]
    done, later, throttled, buried, waiting = (command() for _ in range(5))
    await db(lambda conn: ledger.record(conn, [done, later, throttled, buried]))
    await claim(db)
    await db(
        lambda conn: ledger_outcomes.apply_outcomes(
            conn,
            [
                ledger_outcomes.sent(
                    done.idempotency_key, ledger_outcomes.Delivered(text="hi", message_id="<m@x>")
                ),
                ledger_outcomes.retry_later(later.idempotency_key, delay_s=3600, error="451 later"),
                ledger_outcomes.retry_later(
                    throttled.idempotency_key, delay_s=3600, error="429", held=True
                ),
                ledger_outcomes.dead(buried.idempotency_key, error="550 no", reason="rejected 550"),
            ],
            lease_s=LEASE_S,
        )
    )
    # a retry or a burial recorded late (after another worker sent the row) leaves it sent
    await db(
        lambda conn: ledger_outcomes.apply_outcomes(
            conn,
            [
                ledger_outcomes.dead(done.idempotency_key, error="late", reason="late"),
                ledger_outcomes.retry_later(done.idempotency_key, delay_s=1, error="late"),
            ],
            lease_s=LEASE_S,
        )
    )
    rows = await db(lambda conn: {r.idempotency_key: r for r in conn.execute(select(table))})
    assert rows[done.idempotency_key].state == SENT
    assert rows[done.idempotency_key].message_id == "<m@x>"
    assert rows[done.idempotency_key].delivered_text == "hi"
    assert rows[done.idempotency_key].lease_until is not None  # held to announce it
    assert not rows[done.idempotency_key].outcome_published
    assert rows[later.idempotency_key].state == PENDING
    assert rows[later.idempotency_key].attempts == 1
    assert rows[later.idempotency_key].last_error == "451 later"
    assert rows[buried.idempotency_key].state == DEAD
    assert rows[buried.idempotency_key].reason == "rejected 550"
    assert (await claim(db)).entries == []  # the retry waits for its time

    # the lane's relay is back: what waits in backoff becomes due now, except a rate limit's
    # wait (the provider asked for it; a success elsewhere does not end it)
    await db(lambda conn: ledger.record(conn, [waiting]))
    await db(
        lambda conn: ledger_outcomes.apply_outcomes(
            conn,
            [
                ledger_outcomes.sent(
                    waiting.idempotency_key, ledger_outcomes.NOTHING, pull_forward="email"
                ),
            ],
            lease_s=LEASE_S,
        )
    )
    assert [e.key for e in (await claim(db)).entries] == [later.idempotency_key]
    rows = await db(lambda conn: {r.idempotency_key: r for r in conn.execute(select(table))})
    assert (
        rows[throttled.idempotency_key].not_before
        == rows[throttled.idempotency_key].next_attempt_at
    )
    assert rows[later.idempotency_key].not_before is None


async def test_final_outcomes_are_announced_once_or_again_after_their_lease(
    runners: tuple[UnitRunner, UnitRunner],
) -> None:
    a, b = runners
    announced, lost, pending = (command() for _ in range(3))
    await a(lambda conn: ledger.record(conn, [announced, lost, pending]))
    await claim(a)
    sent_at = utcnow()
    await a(
        lambda conn: ledger_outcomes.apply_outcomes(
            conn,
            [
                ledger_outcomes.sent(
                    announced.idempotency_key, ledger_outcomes.Delivered(text="a"), at=sent_at
                ),
                ledger_outcomes.dead(
                    lost.idempotency_key, error="550", reason="rejected 550", at=sent_at
                ),
            ],
            lease_s=LEASE_S,
            now=sent_at,
        )
    )
    await a(lambda conn: outbox.mark_announced(conn, [announced.idempotency_key]))

    def unannounced(now_s: float) -> Any:
        now = sent_at + timedelta(seconds=now_s)
        return lambda conn: outbox.claim_unannounced(
            conn, "email", limit=10, lease_s=LEASE_S, now=now
        )

    assert await b(unannounced(1)) == []  # the writer holds the announcement
    [found] = await b(unannounced(LEASE_S + 1))  # its writer died: another worker takes it
    assert found.command.idempotency_key == lost.idempotency_key
    assert (found.state, found.reason, found.attempts) == (DEAD, "rejected 550", 1)
    assert found.finished_at == sent_at
    assert await a(unannounced(LEASE_S + 2)) == []  # and holds it in turn
    await b(lambda conn: outbox.mark_announced(conn, [lost.idempotency_key]))
    assert await a(unannounced(10 * LEASE_S)) == []  # pending rows have nothing to announce


async def test_a_lease_that_ran_out_without_an_outcome_puts_the_row_in_doubt(
    runners: tuple[UnitRunner, UnitRunner],
) -> None:
    """The worker died (or lost the database) between the send and its record: the next claim
    says since when the row's outcome is unknown, so an SMS is looked up before it is resent."""
    db = runners[0]
    crashed, retried, cmd_sent = command(), command(), command()
    await db(lambda conn: ledger.record(conn, [crashed, retried, cmd_sent]))
    t0 = utcnow()

    async def claim_all(now: Any) -> dict[str, ledger.Entry]:
        got = await db(
            lambda conn: ledger.claim(conn, "email", limit=8, busy=[], lease_s=LEASE_S, now=now)
        )
        return {e.key: e for e in got.entries}

    first = await claim_all(t0)
    assert all(e.in_doubt_since is None for e in first.values())
    # one retried after a lost answer, one after a refused connection; `crashed` gets nothing
    await db(
        lambda conn: ledger_outcomes.apply_outcomes(
            conn,
            [
                ledger_outcomes.retry_later(
                    retried.idempotency_key, delay_s=0, error="timeout", in_doubt_since=t0
                ),
                ledger_outcomes.retry_later(cmd_sent.idempotency_key, delay_s=0, error="refused"),
            ],
            lease_s=LEASE_S,
            now=t0,
        )
    )
    later = t0 + timedelta(seconds=LEASE_S + 1)
    second = await claim_all(later)
    assert second[crashed.idempotency_key].in_doubt_since == t0  # its lease ran out
    assert second[retried.idempotency_key].in_doubt_since == t0  # the lost answer
    assert second[cmd_sent.idempotency_key].in_doubt_since is None
    # a refused attempt later does not clear the doubt; a recorded part does
    await db(
        lambda conn: ledger_outcomes.apply_outcomes(
            conn,
            [ledger_outcomes.retry_later(retried.idempotency_key, delay_s=0, error="refused")],
            lease_s=LEASE_S,
            now=later,
        )
    )
    progress = {"chars": 10, "sids": ["SM1"], "budget": 1600, "segments": 1}
    await db(
        lambda conn: ledger_outcomes.save_progress(
            conn, crashed.idempotency_key, progress=progress, lease_s=LEASE_S, now=later
        )
    )
    third = await claim_all(later + timedelta(seconds=LEASE_S + 1))
    assert third[retried.idempotency_key].in_doubt_since == t0
    assert third[crashed.idempotency_key].in_doubt_since == later  # its renewed lease ran out
    assert third[crashed.idempotency_key].progress == progress
    rows = await db(lambda conn: {r.idempotency_key: r for r in conn.execute(select(table))})
    assert rows[retried.idempotency_key].attempts == 2
    # an attempt that does not count (refused credentials) leaves the attempts alone
    await db(
        lambda conn: ledger_outcomes.apply_outcomes(
            conn,
            [
                ledger_outcomes.retry_later(
                    cmd_sent.idempotency_key, delay_s=0, error="401", counts=False
                )
            ],
            lease_s=LEASE_S,
            now=later,
        )
    )
    rows = await db(lambda conn: {r.idempotency_key: r for r in conn.execute(select(table))})
    assert rows[cmd_sent.idempotency_key].attempts == 1
