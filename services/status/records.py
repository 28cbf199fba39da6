"""A patron's records and the access log, for the desk's admins (a privacy officer's work).

A records request (a student inspecting their education records under FERPA, a subpoena or
an open-records request naming a number or an address) is answered with every conversation
the status service holds for one contact, whole: the patron's messages, what staff and
refdesk sent them, notes and the timeline. Each answer writes an access-log row per
conversation it showed (`records`, with the request it answers as `detail`), and one with no
conversation when it found none. The access log (FERPA's record of disclosures) is read here
too, newest first, without SQL.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor
from services.status.conversations.access import log_accesses
from services.status.conversations.erasure import erase_closed
from services.status.conversations.reading import DIRECTION_ORDER, message_view
from services.status.conversations.search import contact_keys
from services.status.errors import Conflict
from services.status.models import Conversation, TranscriptAccess, TranscriptEntry
from services.status.resources import Resources
from services.status.staff import staff_names
from shared.clock import DESK_TZ
from shared.events import Channel, ConversationErased

RECORDS_LIMIT = 500
"""The most conversations one answer holds (a number that wrote more is said to have)."""
LOG_LIMIT = 500
"""The most access-log rows one page holds."""
RECORDS = "records"
"""The access-log action of a records request's answer."""
ERASE = "erase"
"""The access-log action of an erasure on a patron's request."""


@dataclass(frozen=True)
class Retention:
    """The days the deployment keeps what it keeps (REFDESK_TRANSCRIPT_RETENTION_DAYS,
    REFDESK_RAW_RETENTION_DAYS), for an answer to say in days."""

    transcript_days: int = 365
    raw_days: int = 7


def retention_of(res: Resources) -> Retention:
    """This deployment's retention, from the status service's settings."""
    settings = res.settings
    return Retention(settings.transcript_retention_days, settings.raw_retention_days)


def held_elsewhere(kept: Retention) -> list[dict[str, str]]:
    """What is held of a patron outside the status service, and for how long, with this
    deployment's days (docs/security.md, "Where student data lives"): a request may reach
    those copies too."""
    days = f"{kept.transcript_days} day{'' if kept.transcript_days == 1 else 's'}"
    raw = f"{kept.raw_days + 1} days"
    return [
        {
            "service": "ingest",
            "what": "the number's text thread (which conversation its next text joins), and "
            "keyed hashes of the email threads' Message-IDs and addresses; no message text",
            "kept": f"{days} after the thread's last message, or until its conversation closes",
        },
        {
            "service": "notifier",
            "what": "each message refdesk sent, as sent, with its recipient (the send ledger)",
            "kept": f"{days} after it was sent; a number's opt-out (STOP), as a keyed hash, for "
            "as long as it stands",
        },
        {
            "service": "Kafka",
            "what": "the events the services exchanged, with the patron's messages and staff notes",
            "kept": f"up to {raw} on the topics; up to 31 days on a dead-letter topic",
        },
        {
            "service": "mailboxes",
            "what": "the circulation managers' email (name, TCC ID, question) and the CARE "
            "Team's alert (no message text)",
            "kept": "the college's mail retention, not refdesk's",
        },
        {
            "service": "backups",
            "what": "the databases as they were when backed up",
            "kept": "as long as the backups are kept",
        },
    ]


async def patron_records(
    *,
    session: AsyncSession,
    actor: Actor,
    contact: str,
    reason: str,
    now: datetime,
    department_name: Callable[[str], str],
    kept: Retention = Retention(),
) -> dict[str, Any]:
    """Every conversation of this contact (a phone number however typed, an email address,
    a chat visitor's id), oldest first, each with its whole transcript; the access-log rows
    are written in the caller's transaction."""
    keys, convs = await _of(session, contact)
    more = len(convs) > RECORDS_LIMIT
    convs = convs[:RECORDS_LIMIT]
    lines = await _lines_of(session, [c.conversation_id for c in convs])
    names = await staff_names(
        session, {e.author for entries in lines.values() for e in entries} | _staff_of(convs)
    )
    await _log(session, actor, RECORDS, [c.conversation_id for c in convs], reason, now)
    return {
        "contact": keys[0],
        "reason": reason,
        "answered_at": now.isoformat(),
        "answered_by": actor.id,
        "conversations": [
            _record(c, lines.get(c.conversation_id, []), names, department_name) for c in convs
        ],
        "more": more,
        "held_elsewhere": held_elsewhere(kept),
    }


_NAMED_ADDRESS = re.compile(r"<\s*([^<>\s]+@[^<>\s]+)\s*>")
_SCHEME = re.compile(r"^\s*(?:tel|mailto|sms):", re.IGNORECASE)


def as_typed(contact: str) -> str:
    """A contact as people paste it, made plain: "Ana Probe <ana@x.edu>" is the address,
    "tel:+18175550142" and "mailto:ana@x.edu" without their scheme."""
    named = _NAMED_ADDRESS.search(contact)
    if named:
        return named[1]
    return _SCHEME.sub("", contact).strip()


async def _of(session: AsyncSession, typed: str) -> tuple[tuple[str, ...], list[Conversation]]:
    """The typed contact's stored forms and its conversations; typed as a conversation id, that
    conversation and, when it names its patron's contact, every other one of that contact."""
    keys = contact_keys(as_typed(typed))
    convs = await _of_contact(session, keys, typed.strip())
    by_id = next((c for c in convs if c.conversation_id == typed.strip()), None)
    if by_id is not None and by_id.patron_contact and by_id.patron_contact not in keys:
        keys = contact_keys(by_id.patron_contact)
        convs = await _of_contact(session, keys, by_id.conversation_id)
    return keys, convs


async def _of_contact(
    session: AsyncSession, keys: tuple[str, ...], conversation_id: str | None = None
) -> list[Conversation]:
    """The contact's conversations, oldest first (one more than an answer holds), and the
    conversation with this id (a chat whose platform gave no address is found by its id)."""
    c = Conversation
    found = await session.execute(
        select(c)
        .where(
            or_(
                c.patron_contact.in_(keys),
                c.texted_from.in_(keys),
                c.conversation_id == (conversation_id or ""),
            )
        )
        .order_by(c.opened_at, c.conversation_id)
        .limit(RECORDS_LIMIT + 1)
    )
    return list(found.scalars())


async def _log(
    session: AsyncSession,
    actor: Actor,
    action: str,
    conversation_ids: list[str],
    reason: str,
    now: datetime,
) -> None:
    """An access-log row per conversation, the request as its detail; one with no
    conversation when there was none (the request is in the log all the same)."""
    await log_accesses(session, actor, _or_none(conversation_ids), action, now, detail=reason)


def _or_none(ids: list[str]) -> list[str | None]:
    return list(ids) or [None]


async def erasure(
    *, session: AsyncSession, actor: Actor, contact: str, reason: str, now: datetime
) -> list[ConversationErased]:
    """The events that erase this contact's conversations not erased yet; Conflict while any
    of them is open (a conversation the desk is working, a crisis above all, is never erased
    from under it: close it first)."""
    _keys, convs = await _of(session, contact)
    still_open = [c for c in convs if c.state != "closed"]
    if still_open:
        raise Conflict(
            f"{len(still_open)} of the patron's conversations "
            f"{'is' if len(still_open) == 1 else 'are'} still open: close "
            f"{'it' if len(still_open) == 1 else 'them'} on the console first; nothing was erased"
        )
    return [
        ConversationErased(
            conversation_id=c.conversation_id,
            channel=Channel(c.channel),
            opened_at=c.opened_at,
            staff_id=actor.id,
            reason=reason,
            erased_at=now,
        )
        for c in convs
        if c.purged_at is None
    ]


async def erase(
    *,
    session: AsyncSession,
    actor: Actor,
    events: list[ConversationErased],
    reason: str,
    now: datetime,
    kept: Retention = Retention(),
) -> dict[str, Any]:
    """Erase what `erasure` found (once the broker has its events), each conversation a row
    of the access log (`erase`); the caller commits."""
    ids = [e.conversation_id for e in events]
    await erase_closed(session, ids, now)
    await _log(session, actor, ERASE, ids, reason, now)
    return {
        "erased": ids,
        "reason": reason,
        "erased_at": now.isoformat(),
        "erased_by": actor.id,
        "held_elsewhere": held_elsewhere(kept),
    }


def _staff_of(convs: list[Conversation]) -> set[str]:
    return {s for c in convs for s in (c.assignee, c.closed_by, c.acknowledged_by) if s}


async def _lines_of(session: AsyncSession, ids: list[str]) -> dict[str, list[TranscriptEntry]]:
    """Each conversation's lines in transcript order (`reading.transcript_of`), one query."""
    by_conversation: dict[str, list[TranscriptEntry]] = defaultdict(list)
    if not ids:
        return by_conversation
    rows = await session.execute(
        select(TranscriptEntry).where(TranscriptEntry.conversation_id.in_(ids))
    )
    for entry in rows.scalars():
        by_conversation[entry.conversation_id].append(entry)
    for entries in by_conversation.values():
        entries.sort(key=lambda e: (e.at, DIRECTION_ORDER.get(e.direction, 9), e.seq or 0, e.id))
    return by_conversation


def _record(
    conv: Conversation,
    entries: list[TranscriptEntry],
    names: Mapping[str, str],
    department_name: Callable[[str], str],
) -> dict[str, Any]:
    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at is not None else None

    return {
        "conversation_id": conv.conversation_id,
        "channel": conv.channel,
        "state": conv.state,
        "department": conv.department,
        "department_name": department_name(conv.department) if conv.department else None,
        "opened_at": iso(conv.opened_at),
        "closed_at": iso(conv.closed_at),
        "closed_by": conv.closed_by,
        "assignee": conv.assignee,
        "crisis": conv.crisis,
        "patron": {
            "name": conv.patron_name,
            "contact": conv.patron_contact,
            "texted_from": conv.texted_from,
            # a chat's contact is what the visitor typed on the chat form: check before release
            "contact_verified": conv.channel != "chat",
        },
        "subject": conv.subject,
        "topic": conv.topic,
        "read_scale": conv.read_scale,
        "purged_at": iso(conv.purged_at),
        "messages": [
            {
                **message_view(e, names=names, department_name=department_name),
                "author_name": names.get(e.author),
            }
            for e in entries
        ],
    }


@dataclass(frozen=True)
class LogFilter:
    """Which access-log rows to read (each None: any)."""

    conversation_id: str | None = None
    staff_id: str | None = None
    action: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    before: int | None = None
    """Rows older than this row id (the next page)."""
    limit: int = 100


async def access_log(session: AsyncSession, wanted: LogFilter) -> dict[str, Any]:
    """Access-log rows, newest first, with staff names; `next_before` reads the next page."""
    log = TranscriptAccess
    query = select(log).order_by(log.id.desc()).limit(wanted.limit + 1)
    if wanted.conversation_id:
        query = query.where(log.conversation_id == wanted.conversation_id)
    if wanted.staff_id:
        query = query.where(log.staff_id == wanted.staff_id)
    if wanted.action:
        query = query.where(log.action == wanted.action)
    if wanted.date_from:
        query = query.where(log.at >= datetime.combine(wanted.date_from, time.min, tzinfo=DESK_TZ))
    if wanted.date_to and wanted.date_to < date.max:  # to=9999-12-31: no end
        end = datetime.combine(wanted.date_to + timedelta(days=1), time.min, tzinfo=DESK_TZ)
        query = query.where(log.at < end)
    if wanted.before is not None:
        query = query.where(log.id < wanted.before)
    rows = list((await session.execute(query)).scalars())
    more = len(rows) > wanted.limit
    rows = rows[: wanted.limit]
    names = await staff_names(session, {r.staff_id for r in rows})
    return {
        "items": [
            {
                "id": r.id,
                "at": r.at.isoformat(),
                "staff_id": r.staff_id,
                "staff_name": names.get(r.staff_id),
                "action": r.action,
                "conversation_id": r.conversation_id,
                "detail": r.detail,
            }
            for r in rows
        ],
        "next_before": rows[-1].id if more and rows else None,
    }
