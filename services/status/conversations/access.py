"""The transcript access log's writes (FERPA's record of disclosures): who read, searched,
listed, filled a macro for, blocked or unblocked which conversation, and when; in the caller's
transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert
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
