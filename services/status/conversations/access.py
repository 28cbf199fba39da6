"""The transcript access log's writes (FERPA's record of disclosures): who read, searched,
listed, filled a macro for, blocked or unblocked which conversation, and when; in the caller's
transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor
from services.status.models import TranscriptAccess

_LOG = insert(TranscriptAccess)


async def log_access(
    session: AsyncSession, actor: Actor, conversation_id: str | None, action: str, at: datetime
) -> None:
    """One line of the access log (who, when, which conversation; never what was searched),
    written in the caller's transaction."""
    await log_accesses(session, actor, [conversation_id], action, at)


async def log_accesses(
    session: AsyncSession,
    actor: Actor,
    conversation_ids: Iterable[str | None],
    action: str,
    at: datetime,
    detail: str | None = None,
) -> None:
    """A line of the access log per conversation (one INSERT), in the caller's transaction;
    `detail` (a records request's name) on each."""
    values = [
        {"staff_id": actor.id, "conversation_id": cid, "action": action, "at": at, "detail": detail}
        for cid in conversation_ids
    ]
    if values:
        await session.execute(_LOG, values)


SHOWN_AGAIN = timedelta(hours=1)
"""A conversation a search or a list showed the same staff member again within this time is
not logged again: the console refreshes an open search every minute, and had written 200 rows
a minute (96,000 a shift) of disclosures nobody made (an outside review)."""


async def log_shown(
    session: AsyncSession,
    actor: Actor,
    conversation_ids: list[str | None],
    action: str,
    at: datetime,
) -> None:
    """`log_accesses` for what a search or a list showed, leaving out the conversations (and
    the "showed none" line, id None) this staff member was shown by the same action within
    SHOWN_AGAIN."""
    wanted = [cid for cid in conversation_ids if cid is not None]
    shown: ColumnElement[bool] = TranscriptAccess.conversation_id.in_(wanted)
    if None in conversation_ids:
        shown = or_(shown, TranscriptAccess.conversation_id.is_(None))
    seen = set(
        await session.scalars(
            select(TranscriptAccess.conversation_id)
            .distinct()
            .where(
                TranscriptAccess.staff_id == actor.id,
                TranscriptAccess.action == action,
                TranscriptAccess.at >= at - SHOWN_AGAIN,
                shown,
            )
        )
    )
    await log_accesses(session, actor, [c for c in conversation_ids if c not in seen], action, at)
