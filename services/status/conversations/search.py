"""Search across conversations: words in any message (SQLite FTS5 or PostgreSQL full-text),
the patron's contact, a date range. Returns conversation ids; the caller applies who may see
what."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import phonenumbers
from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.models import Conversation, TranscriptEntry
from shared.clock import DESK_TZ

MAX_RESULTS = 500
WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(words: str) -> str:
    """User text as an FTS5 query: every word must appear (prefix match), quotes escaped."""
    return " ".join(f'"{w}"*' for w in WORD.findall(words)[:12])


def ts_query(words: str) -> str:
    """User text as a PostgreSQL tsquery: every word, as a prefix (only \\w characters)."""
    return " & ".join(f"{w.lower()}:*" for w in WORD.findall(words)[:12])


async def _by_text(session: AsyncSession, words: str) -> set[str]:
    if not WORD.search(words):
        return set()
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        rows = await session.execute(
            text(
                "SELECT DISTINCT t.conversation_id FROM transcript_fts f "
                "JOIN transcript_entries t ON t.rowid = f.rowid "
                "WHERE transcript_fts MATCH :q LIMIT :n"
            ),
            {"q": fts_query(words), "n": MAX_RESULTS},
        )
    else:
        vector = func.to_tsvector("simple", func.coalesce(TranscriptEntry.text, ""))
        query = func.to_tsquery("simple", ts_query(words))
        rows = await session.execute(
            select(TranscriptEntry.conversation_id)
            .where(vector.op("@@")(query))
            .distinct()
            .limit(MAX_RESULTS)
        )
    return {row[0] for row in rows} | await _by_subject(session, words)


async def _by_subject(session: AsyncSession, words: str) -> set[str]:
    """Conversations whose email subject holds every word, as a prefix of one of its words
    or anywhere in it ("perdido" finds "Libro perdido": subjects are not in the text index)."""
    found = WORD.findall(words)[:12]
    if not found:
        return set()
    subject = func.lower(func.coalesce(Conversation.subject, ""))
    rows = await session.execute(
        select(Conversation.conversation_id)
        .where(Conversation.subject.is_not(None), *(subject.contains(w.lower()) for w in found))
        .limit(MAX_RESULTS)
    )
    return {row[0] for row in rows}


CHANNEL_PREFIX = re.compile(r"^(?P<channel>[a-z]{2,16}):(?=\+)")
"""A number on another Twilio channel, as ingest stores it: `whatsapp:+18175550142`."""


def contact_key(typed: str) -> str:
    """A contact as conversations store it: an email address in lower case, a phone number in
    E.164, however it was typed ("817-555-0142", "(817) 555 0142" and "+18175550142" are one
    number; a number without a country code is taken as American, as ingest takes it)."""
    typed = typed.strip()
    if "@" not in typed:
        try:
            number = phonenumbers.parse(typed, "US")
        except phonenumbers.NumberParseException:
            return typed.lower()
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return typed.lower()


def contact_keys(typed: str) -> tuple[str, ...]:
    """Every stored form of a typed contact: a phone number also as it is stored when it
    wrote on another Twilio channel (`whatsapp:+1...`), so "(817) 555-0122" finds that
    patron's WhatsApp messages too; `whatsapp:...` typed is that one number."""
    typed = typed.strip()
    prefix = CHANNEL_PREFIX.match(typed.lower())
    if prefix:
        number = contact_key(typed[prefix.end() :])
        return (f"{prefix['channel']}:{number}",) if number.startswith("+") else (typed.lower(),)
    key = contact_key(typed)
    if not key.startswith("+"):
        return (key,)
    return (key, *(f"{channel}:{key}" for channel in OTHER_CHANNELS))


OTHER_CHANNELS = ("whatsapp",)
"""The Twilio channels besides SMS whose senders a search by number also finds."""


async def matching(
    *,
    session: AsyncSession,
    text: str | None = None,
    contact: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> tuple[str, ...]:
    """Ids of conversations that match every given criterion."""
    found: set[str] | None = None
    if text:
        found = await _by_text(session, text)
    query = select(Conversation.conversation_id)
    narrowed = False
    if contact:
        keys = contact_keys(contact)  # a text thread turned email keeps its number
        query = query.where(
            or_(Conversation.patron_contact.in_(keys), Conversation.texted_from.in_(keys))
        )
        narrowed = True
    if date_from:
        start = datetime.combine(date_from, time.min, tzinfo=DESK_TZ)
        query = query.where(Conversation.last_message_at >= start)
        narrowed = True
    if date_to:
        end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=DESK_TZ)
        query = query.where(Conversation.opened_at < end)
        narrowed = True
    if narrowed:
        if found is not None:
            query = query.where(Conversation.conversation_id.in_(sorted(found)))
        rows = await session.execute(query.limit(MAX_RESULTS))
        found = {row[0] for row in rows}
    return tuple(sorted(found or ()))
