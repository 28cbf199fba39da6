"""The queue is read off its index on both databases: a page of the desk queue costs its own
rows, not a sort of every open conversation (the planner uses an expression index only for the
very expression it was built on, so a change to queue.BAND alone would lose it silently). The
re-escalation sweep likewise reads the crises awaiting acknowledgement off their partial index
(a planner uses it only when the query spells the index's predicate), a text's delivery
report finds its line off the partial index of the texts refdesk sent, retention finds the
conversations the desk never sees off theirs, and the sweep finds replies not sent yet and the
conversations waiting again for one off theirs."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncSession
from status_fakes import T0

from services.status import search_index
from services.status.auth import Actor
from services.status.conversations.retention import (
    closed_expired,
    never_shown_expired,
    open_silent_expired,
)
from services.status.conversations.search import matching
from services.status.conversations.sms_reports import lines_of
from services.status.queue import QueueFilter, listing_statement
from services.status.sweep import (
    CARE_ALERTS_FLAGGED,
    CARE_ALERTS_UNSENT,
    DUE_CRISES,
    UNSENT_ANSWERS,
    WAITING_AGAIN,
)

READER = Actor(id="lokafor", role="staff", departments=("reference",))
SUPERVISOR = Actor(id="dkim", role="supervisor", departments=("reference",))


async def plan(session: AsyncSession, actor: Actor, flt: QueueFilter) -> str:
    """The database's plan for the listing's statement, as one string."""
    return await plan_of(session, listing_statement(actor, flt))


async def plan_of(session: AsyncSession, statement: Select[Any]) -> str:
    """The database's plan for a statement, as one string."""
    dialect = session.get_bind().dialect
    sql = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    if dialect.name == "sqlite":
        rows = await session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
        return "\n".join(str(row[-1]) for row in rows)
    # an empty table is cheaper to scan and sort: ask whether the index serves the order
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    await session.execute(text("SET LOCAL enable_sort = off"))
    rows = await session.execute(text(f"EXPLAIN {sql}"))
    return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize("actor", [SUPERVISOR, READER], ids=["supervisor", "staff"])
async def test_open_queue_page_reads_the_queue_index(session: AsyncSession, actor: Actor) -> None:
    found = await plan(session, actor, QueueFilter(limit=50))
    assert "ix_conversations_queue" in found, found
    assert "TEMP B-TREE" not in found and "Sort" not in found, found


async def test_closed_list_reads_its_index(session: AsyncSession) -> None:
    found = await plan(session, SUPERVISOR, QueueFilter(state="closed", limit=50))
    assert "ix_conversations_closed" in found, found


async def test_reescalation_sweep_reads_the_crisis_index(session: AsyncSession) -> None:
    found = await plan_of(session, DUE_CRISES.params(cutoff=T0))
    assert "ix_conversations_crisis_due" in found, found
    assert "TEMP B-TREE" not in found and "Sort" not in found, found


async def test_a_texts_report_finds_its_line_off_the_sent_texts_index(
    session: AsyncSession,
) -> None:
    """Only the texts refdesk sent are in the index a provider's report is looked up by."""
    found = await plan_of(session, lines_of(["SM" + "0" * 32, "SM" + "1" * 32]))
    assert "ix_transcript_text_sent" in found, found


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_retention_reads_the_closed_conversations_not_purged_off_their_index(
    session: AsyncSession,
) -> None:
    """It read every closed conversation of past years, purged ones too, every 5 s (0.1-0.3 s
    on PostgreSQL at 400,000). PostgreSQL only: SQLite's planner, without statistics, weighs
    it even with `ix_conversations_closed`, which serves the closed list."""
    found = await plan_of(session, closed_expired(T0))
    assert "ix_conversations_unpurged_closed" in found, found


async def test_retention_reads_the_conversations_nobody_sees_off_their_index(
    session: AsyncSession,
) -> None:
    """Retention runs with every sweep (seconds apart): it must not scan every conversation."""
    found = await plan_of(session, never_shown_expired(T0))
    assert "ix_conversations_never_shown" in found, found
    found = await plan_of(session, open_silent_expired(T0))
    assert "ix_conversations_open_last_message" in found, found


async def test_the_sweep_reads_unsent_replies_and_conversations_waiting_again_off_their_indexes(
    session: AsyncSession,
) -> None:
    """Every few seconds, on transcripts of years: only the few replies not reported on yet,
    and the few conversations marked."""
    found = await plan_of(session, UNSENT_ANSWERS.params(cutoff=T0))
    assert "ix_transcript_reply_unsent" in found, found
    found = await plan_of(session, WAITING_AGAIN)
    assert "ix_conversations_unsent_reply" in found, found


async def test_the_sweep_reads_unsent_care_alerts_and_flagged_crises_off_their_indexes(
    session: AsyncSession,
) -> None:
    found = await plan_of(session, CARE_ALERTS_UNSENT.params(cutoff=T0))
    assert "ix_transcript_care_alert_unsent" in found, found
    found = await plan_of(session, CARE_ALERTS_FLAGGED)
    assert "ix_conversations_care_alert_unsent" in found, found


async def test_a_search_reads_the_transcripts_text_index_on_postgresql(
    session: AsyncSession,
) -> None:
    """The words are matched off `ix_transcript_fts` (the text without its diacritics, built
    by `search_index`), which PostgreSQL uses only for the very expression it was built on."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        pytest.skip("SQLite searches its FTS5 table")
    await session.commit()  # nothing open for the concurrent build to wait for
    assert session.bind is not None
    await search_index.ensure(session.bind)  # type: ignore[arg-type]
    flt = QueueFilter(state="all", matches=matching(dialect=dialect, text="jose garcia"))
    assert "ix_transcript_fts" in await plan(session, SUPERVISOR, flt)
