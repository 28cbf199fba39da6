"""Search across conversations: words in any message (SQLite FTS5 or PostgreSQL full-text),
the email's subject or the patron's name, the patron's contact, a date range. Returns a
condition on conversations; the caller applies who may see what, the order and the page.

The messages refdesk sends by itself (crisis resources, hand-offs, acknowledgements, surveys)
are not searched: they are the same words in thousands of conversations, and "daño" had found
87 conversations of which 3 patrons wrote it (an outside review). What staff wrote is."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    column,
    event,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute

from services.status.conversations.folding import MARKS, STROKED, UNSTROKED, fold
from services.status.conversations.transcript import REFDESK
from services.status.models import Conversation, TranscriptEntry
from shared.clock import DESK_TZ

SQLITE_FOLD = "refdesk_fold"
"""SQLite: a function of one text, lower case without diacritics (`fold`), which every
SQLite connection of the process is given; PostgreSQL computes the same in SQL (`folded`)."""


def _fold_lower(value: str | None) -> str:
    return fold(value or "").lower()


@event.listens_for(Engine, "connect")
def _sqlite_functions(dbapi_connection: Any, _record: Any) -> None:
    """Give a new SQLite connection `SQLITE_FOLD` (others have nothing to add)."""
    if "sqlite" in type(dbapi_connection).__module__:
        dbapi_connection.create_function(SQLITE_FOLD, 1, _fold_lower, deterministic=True)


def typed_words(text: str) -> list[str]:
    """The words of what was typed, composed (NFC), each with the combining marks written on
    its letters (`\\w` alone had split "नमस्ते" at its vowel signs, and a decomposed "Ibáñez"
    at its accents); twelve at most."""
    found: list[str] = []
    word: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        if ch.isalnum() or ch == "_" or (word and unicodedata.category(ch).startswith("M")):
            word.append(ch)
        elif word:
            found.append("".join(word))
            word = []
    if word:
        found.append("".join(word))
    return found[:12]


def fts_query(words: str) -> str:
    """User text as an FTS5 query: every word must appear (prefix match), quotes escaped."""
    return " ".join(f'"{w}"*' for w in typed_words(words))


def ts_query(words: str) -> str:
    """User text as a PostgreSQL tsquery: every word without its diacritics, as a prefix (only
    \\w characters)."""
    return " & ".join(f"{fold(w).lower()}:*" for w in typed_words(words))


def _literal(value: str) -> ColumnElement[str]:
    """A constant written into the SQL itself, not bound: PostgreSQL matches an expression
    index only to the very expression, and a bound parameter is not one once the plan is
    generic. (The constants here hold no quote.)"""
    assert "'" not in value
    return literal_column(f"'{value}'")


TextColumn = ColumnElement[str | None] | InstrumentedAttribute[str | None]


def folded(value: TextColumn) -> ColumnElement[str]:
    """PostgreSQL: a text column without diacritics, as `ix_transcript_fts` indexes it
    (`folding`)."""
    decomposed = func.normalize(func.coalesce(value, _literal("")), literal_column("NFD"))
    unmarked = func.regexp_replace(decomposed, _literal(MARKS), _literal(""), _literal("g"))
    return func.translate(unmarked, _literal(STROKED), _literal(UNSTROKED))


def text_vector() -> ColumnElement[Any]:
    """PostgreSQL: the transcript line's words, the expression `ix_transcript_fts` is on."""
    return func.to_tsvector(_literal("simple"), folded(TranscriptEntry.text))


def _by_text(dialect: str, words: str) -> ColumnElement[bool]:
    """Conversations with a message holding every word (refdesk's own messages aside), or
    whose subject or patron's name does. A condition, not a list of ids: the listing applies
    who may see what, its order and its page to every match (ids capped here had left a
    year-old desk showing an arbitrary 500 of 20,000 matches, today's not among them), and
    PostgreSQL reads the words off the full-text index (`ix_transcript_fts`) rather than
    computing each line's vector."""
    if not typed_words(words):
        return false()
    if dialect == "sqlite":
        lines = text(
            "SELECT t.conversation_id FROM transcript_fts f "
            "JOIN transcript_entries t ON t.rowid = f.rowid "
            "WHERE transcript_fts MATCH :fts_q "
            "AND NOT (t.direction = 'out' AND t.author = :refdesk)"
        ).bindparams(fts_q=fts_query(words), refdesk=REFDESK)
        in_lines = Conversation.conversation_id.in_(lines.columns(column("conversation_id")))
    else:
        query = func.to_tsquery(_literal("simple"), ts_query(words))
        in_lines = Conversation.conversation_id.in_(
            select(TranscriptEntry.conversation_id).where(
                text_vector().op("@@")(query),
                ~and_(TranscriptEntry.direction == "out", TranscriptEntry.author == REFDESK),
            )
        )
    return or_(
        in_lines,
        _holding(dialect, Conversation.subject, words),
        _holding(dialect, Conversation.patron_name, words),
    )


def _holding(dialect: str, value: TextColumn, words: str) -> ColumnElement[bool]:
    """A short text column (an email's subject, the patron's name) holding every word, as a
    prefix of one of its words or anywhere in it ("perdido" finds "Libro perdido", "begona"
    finds "Begoña Ortíz"), in any case and without diacritics: neither is in the text
    index."""
    if dialect == "sqlite":
        held = getattr(func, SQLITE_FOLD)(value)
    else:
        held = func.lower(folded(value))
    typed = [fold(w).lower() for w in typed_words(words)]
    return and_(value.is_not(None), *(held.contains(w, autoescape=True) for w in typed))


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


def matching(
    *,
    dialect: str,
    text: str | None = None,
    contact: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> ColumnElement[bool]:
    """The conversations that match every given criterion, as a condition on
    `conversations` (`dialect`: the database's, whose full-text search it uses)."""
    found: list[ColumnElement[bool]] = []
    if text:
        found.append(_by_text(dialect, text))
    if contact:
        keys = contact_keys(contact)  # a text thread turned email keeps its number
        found.append(or_(Conversation.patron_contact.in_(keys), Conversation.texted_from.in_(keys)))
    if date_from:
        start = datetime.combine(date_from, time.min, tzinfo=DESK_TZ)
        found.append(Conversation.last_message_at >= start)
    if date_to:
        end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=DESK_TZ)
        found.append(Conversation.opened_at < end)
    return and_(true(), *found)
