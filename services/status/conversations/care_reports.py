"""The records of the CARE Team's incident report: each staff member who filed it on a
conversation's patron keeps a record of their own until they take it back, and the
conversation shows the earliest record standing (`Conversation.care_report_at`/`_by`, read by
the queue and the re-escalation email).

One record per conversation had lost a colleague's: while Ana's record stood, Ben pressing "I
filed the CARE Team report" kept nothing, and when Ana took hers back (pressed by mistake) the
conversation showed no report filed although Ben had filed one (an outside review).

The staff action and the consumer applying its event write the same row (its key is the
conversation, the staff member and the time), so either order, a replay or a second replica
leaves one record. A staff member has at most one standing record on a conversation (a unique
index over the records not taken back): pressing it again, on any replica, answers with it."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.models import AnyConversation, CareReport, Conversation
from shared.db import insert_ignoring_duplicates

_TABLE = cast(Table, CareReport.__table__)


async def lock(session: AsyncSession, conversation_id: str) -> None:
    """Hold the conversation's row for the rest of the transaction (PostgreSQL): a filing and
    a withdrawal on two replicas at once each set the record shown from their own snapshot, and
    the later commit left "no report filed" over a colleague's standing record until the
    consumer settled it again (an outside review). SQLite has one writer at a time already."""
    await session.execute(
        select(Conversation.conversation_id)
        .where(Conversation.conversation_id == conversation_id)
        .with_for_update()
    )


async def record(session: AsyncSession, conversation_id: str, staff_id: str, at: datetime) -> bool:
    """Keep a staff member's record; False when it is there already or they have one
    standing (nothing written)."""
    statement = insert_ignoring_duplicates(session, _TABLE).values(
        conversation_id=conversation_id, staff_id=staff_id, filed_at=at
    )
    result = await session.execute(statement)
    return getattr(result, "rowcount", 0) == 1


async def withdraw(
    session: AsyncSession,
    conversation_id: str,
    *,
    filed_by: str,
    filed_at: datetime,
    by: str,
    at: datetime,
) -> bool:
    """Take back one record; False when it was taken back already. A withdrawal read before
    its record (a rebuild from the topics) keeps the record as taken back."""
    result = await session.execute(
        update(CareReport)
        .where(
            CareReport.conversation_id == conversation_id,
            CareReport.staff_id == filed_by,
            CareReport.filed_at == filed_at,
            CareReport.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=at, withdrawn_by=by)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 1:
        return True
    await session.execute(
        insert_ignoring_duplicates(session, _TABLE).values(
            conversation_id=conversation_id,
            staff_id=filed_by,
            filed_at=filed_at,
            withdrawn_at=at,
            withdrawn_by=by,
        )
    )
    return False


async def standing(session: AsyncSession, conversation_id: str) -> list[CareReport]:
    """The records not taken back, earliest first."""
    found = await session.scalars(
        select(CareReport)
        .where(CareReport.conversation_id == conversation_id, CareReport.withdrawn_at.is_(None))
        .order_by(CareReport.filed_at, CareReport.staff_id)
        .execution_options(populate_existing=True)
    )
    return list(found)


async def settle(session: AsyncSession, conv: AnyConversation) -> list[CareReport]:
    """Show the earliest standing record on the conversation (none: no report filed); the
    standing records, earliest first."""
    records = await standing(session, conv.conversation_id)
    first = records[0] if records else None
    conv.care_report_at = first.filed_at if first else None
    conv.care_report_by = first.staff_id if first else None
    return records


def describe(conv: AnyConversation, records: list[CareReport]) -> dict[str, object] | None:
    """Who recorded filing the report and when, the earliest first (None: nobody has);
    `records` lists every standing record (as `standing` or `settle` returned them)."""
    if conv.care_report_at is None:
        return None
    return {
        "filed_at": conv.care_report_at.isoformat(),
        "filed_by": conv.care_report_by,
        "records": [{"filed_by": r.staff_id, "filed_at": r.filed_at.isoformat()} for r in records],
    }


async def view(session: AsyncSession, conv: AnyConversation) -> dict[str, object] | None:
    """`describe` with the standing records read (one query, none when nobody has filed)."""
    if conv.care_report_at is None:
        return None
    return describe(conv, await standing(session, conv.conversation_id))
