"""Transcript retention: a closed conversation's transcript, contact, name, subject and
preview are removed REFDESK_TRANSCRIPT_RETENTION_DAYS after its close; what remains carries
no student data (for the desk's statistics). What the SMS provider reported about a text is
kept as long, from the report; the live feed's rows are kept an hour."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.models import Conversation, DeskChange, SmsReport, TranscriptEntry

BATCH = 500
FEED_KEEP = timedelta(hours=1)

PURGED = Counter(
    "refdesk_transcripts_purged",
    "Closed conversations whose transcript and patron details retention removed",
)


async def purge_expired(*, session: AsyncSession, now: datetime, retention_days: int) -> int:
    """Purge up to BATCH conversations closed before the retention cutoff; the caller
    commits. Returns how many."""
    cutoff = now - timedelta(days=retention_days)
    rows = await session.execute(
        select(Conversation.conversation_id)
        .where(
            Conversation.state == "closed",
            Conversation.closed_at < cutoff,
            Conversation.purged_at.is_(None),
        )
        .limit(BATCH)
    )
    ids = [row[0] for row in rows]
    if ids:
        await session.execute(
            delete(TranscriptEntry).where(TranscriptEntry.conversation_id.in_(ids))
        )
        await session.execute(
            update(Conversation)
            .where(Conversation.conversation_id.in_(ids))
            .values(
                patron_contact=None,
                patron_name=None,
                subject=None,
                preview=None,
                note=None,
                purged_at=now,
            )
        )
        PURGED.inc(len(ids))
    await session.execute(delete(SmsReport).where(SmsReport.reported_at < cutoff))
    await session.execute(delete(DeskChange).where(DeskChange.at < now - FEED_KEEP))
    return len(ids)
