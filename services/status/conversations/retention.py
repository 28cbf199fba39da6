"""Transcript retention: a closed conversation's transcript, contact, name, subject and
preview are removed REFDESK_TRANSCRIPT_RETENTION_DAYS after its close; what remains carries
no student data (for the desk's statistics). A conversation nobody closed (answered and left
open, or one the desk never sees: a blocked sender's, or one only mail systems wrote to, that
no crisis net routed) is closed and purged as long after its last message. What the SMS provider
reported about a text, and a mail system about an email, is kept as long, from the report; the
live feed's rows are kept an hour."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.conversations import blocking
from services.status.models import (
    IS_OPEN,
    NEVER_SHOWN,
    UNPURGED_CLOSED,
    Conversation,
    DeskChange,
    EmailBounce,
    SmsReport,
    TranscriptEntry,
)
from shared.db import broad

BATCH = 500
FEED_KEEP = timedelta(hours=1)

PURGED = Counter(
    "refdesk_transcripts_purged",
    "Closed conversations whose transcript and patron details retention removed",
)


def closed_expired(cutoff: datetime, limit: int = BATCH) -> Select[str]:
    """Closed conversations not purged yet, closed before `cutoff` (read off
    `ix_conversations_unpurged_closed`, which holds no purged one)."""
    return (
        select(Conversation.conversation_id)
        .where(UNPURGED_CLOSED, Conversation.closed_at < cutoff)
        .limit(limit)
    )


def never_shown_expired(cutoff: datetime, limit: int = BATCH) -> Select[str]:
    """Conversations the desk never sees, not purged, whose last message is before `cutoff`
    (read off `ix_conversations_never_shown`)."""
    return (
        select(Conversation.conversation_id)
        .where(NEVER_SHOWN, Conversation.last_message_at < cutoff, Conversation.purged_at.is_(None))
        .limit(limit)
    )


def open_silent_expired(cutoff: datetime, limit: int = BATCH) -> Select[str]:
    """Open conversations nobody has touched since `cutoff`: the patron's last message, the
    last staff reply and the last claim all before it (read off
    `ix_conversations_open_last_message`; a reply staff wrote minutes ago keeps it)."""
    c = Conversation
    return (
        select(c.conversation_id)
        .where(
            broad(IS_OPEN),
            c.last_message_at < cutoff,
            or_(c.answered_at.is_(None), c.answered_at < cutoff),
            or_(c.assignee_since.is_(None), c.assignee_since < cutoff),
        )
        .limit(limit)
    )


async def purge_expired(*, session: AsyncSession, now: datetime, retention_days: int) -> int:
    """Purge up to BATCH conversations closed before the retention cutoff, and up to as many
    nobody closed (left open, or never seen by the desk) whose last message is before it,
    closing those; the caller commits. Returns how many."""
    cutoff = now - timedelta(days=retention_days)
    ids = list(await session.scalars(closed_expired(cutoff)))
    unseen = list(await session.scalars(never_shown_expired(cutoff)))
    # answered and never closed, or silent crises: kept without end before (a privacy review)
    unseen += [
        cid for cid in await session.scalars(open_silent_expired(cutoff)) if cid not in unseen
    ]
    if unseen:  # closed, so a replayed or late line of it is dropped as a purged one's is
        await session.execute(
            update(Conversation)
            .where(Conversation.conversation_id.in_(unseen))
            .values(state="closed", closed_at=now)
        )
    ids += unseen
    if ids:
        await session.execute(
            delete(TranscriptEntry).where(TranscriptEntry.conversation_id.in_(ids))
        )
        await session.execute(
            update(Conversation)
            .where(Conversation.conversation_id.in_(ids))
            .values(
                patron_contact=None,
                texted_from=None,
                patron_name=None,
                subject=None,
                preview=None,
                note=None,
                purged_at=now,
            )
        )
        PURGED.inc(len(ids))
    await session.execute(delete(SmsReport).where(SmsReport.reported_at < cutoff))
    await session.execute(delete(EmailBounce).where(EmailBounce.reported_at < cutoff))
    await session.execute(delete(DeskChange).where(DeskChange.at < now - FEED_KEEP))
    # a lifted block's contact and reason are kept as long as a transcript (one in force stays)
    await blocking.purge_lifted(session, now=now, kept=timedelta(days=retention_days))
    return len(ids)
