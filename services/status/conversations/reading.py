"""Reading a conversation: the transcript in order, the patron's earlier conversations, what
the reader may do; every read written to the transcript access log."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status import queue
from services.status.auth import Actor
from services.status.conversations import blocking, care_reports
from services.status.conversations.access import log_access
from services.status.conversations.actions import check, get
from services.status.conversations.policy import Act, permitted
from services.status.conversations.transcript import AUTOMATED_LABEL, AUTOMATIC_OF_KIND
from services.status.models import Conversation, TranscriptEntry
from services.status.staff import staff_names
from shared.events import Channel, NotificationKind

EARLIER_LIMIT = 10
DIRECTION_ORDER = {"in": 0, "event": 1, "out": 2, "note": 3}
KINDS = {kind.value: kind for kind in NotificationKind}


ROUTED = re.compile(r"^(Routed|Transferred) to ([a-z0-9-]+)")
"""How a routing or transfer line starts (`transcript._department_phrase`, `on_transferred`)."""


def event_text(
    text: str, *, author: str, names: Mapping[str, str], department_name: Callable[[str], str]
) -> str:
    """A timeline line as people read it: the department's name for its id ("Transferred to NW
    Circulation") and the staff member's name for the id ending it ("by Maria Garcia"); an id
    stays where no name is known. The projection writes ids (names change; lines do not)."""
    text = ROUTED.sub(lambda m: f"{m[1]} to {department_name(m[2])}", text, count=1)
    by = f" by {author}"
    if author in names and text.endswith(by):
        text = text[: -len(by)] + f" by {names[author]}"
    return text


def message_view(
    entry: TranscriptEntry,
    *,
    names: Mapping[str, str] | None = None,
    department_name: Callable[[str], str] = str,
) -> dict[str, Any]:
    """One transcript line as the API shows it; an event's text with names (`event_text`).
    `automated` names an automated message refdesk sent; `automatic` says, as the event did,
    that a line `in` is mail a mail system sent (`auto_reply`, or `bounce`: a delivery failure
    or delay report, `kind` says which), not the patron's message."""
    delivery = None
    if entry.delivery_state is not None:
        delivery = {"state": entry.delivery_state, "reason": entry.delivery_reason}
    label = None
    automatic = AUTOMATIC_OF_KIND.get(entry.kind or "") if entry.direction == "in" else None
    if entry.kind and entry.direction == "out":
        kind = KINDS.get(entry.kind)
        label = AUTOMATED_LABEL.get(kind) if kind else None
    text = entry.text
    if entry.direction == "event" and text:
        text = event_text(
            text, author=entry.author, names=names or {}, department_name=department_name
        )
    return {
        "id": entry.id,
        "direction": entry.direction,
        "text": text,
        "at": entry.at.isoformat(),
        "author": entry.author,
        "kind": entry.kind,
        "automated": label,
        "automatic": automatic.value if automatic else None,
        "channel": entry.channel,
        "subject": entry.subject,
        "attachments": entry.attachments or [],
        "segments": entry.segments,
        "delivery": delivery,
    }


async def transcript_of(session: AsyncSession, conversation_id: str) -> list[TranscriptEntry]:
    """Every line, oldest first."""
    rows = await session.execute(
        select(TranscriptEntry).where(TranscriptEntry.conversation_id == conversation_id)
    )
    entries = list(rows.scalars().all())
    # a chat burst stamped to one second keeps the platform's order (its sequence)
    entries.sort(key=lambda e: (e.at, DIRECTION_ORDER.get(e.direction, 9), e.seq or 0, e.id))
    return entries


@functools.lru_cache(maxsize=1024)
def _earlier_statement(actor: Actor) -> Select[*tuple[Any, ...]]:
    """Built once per reader (statements are immutable; what the reader may see is in it)."""
    return (
        select(*queue.ROW_COLUMNS)
        .where(
            or_(
                Conversation.patron_contact.in_(bindparam("contacts", expanding=True)),
                Conversation.texted_from.in_(bindparam("contacts", expanding=True)),
            ),
            Conversation.conversation_id != bindparam("conversation_id"),
            Conversation.channel != Channel.CHAT.value,
            queue.visible_to(actor),
        )
        .order_by(Conversation.opened_at.desc())
        .limit(EARLIER_LIMIT)
    )


async def earlier_conversations(
    session: AsyncSession, conv: Conversation, actor: Actor
) -> list[queue.AnyRow]:
    """The same contact's other conversations the reader may see, newest first (queue rows):
    by the number too of a text thread turned email, and of one that was. A chat's contact is
    what the visitor typed into the chat form, unverified: it links nothing, either way (an
    outside review typed another patron's address and was shown their email conversations)."""
    contacts = [c for c in (conv.patron_contact, conv.texted_from) if c]
    if not contacts or conv.channel == Channel.CHAT.value:
        return []
    rows = await session.execute(
        _earlier_statement(actor),
        {"contacts": contacts, "conversation_id": conv.conversation_id},
    )
    return list(rows.all())


async def conversation_view(
    *,
    session: AsyncSession,
    conversation_id: str,
    actor: Actor,
    now: datetime,
    department_name: Callable[[str], str],
) -> dict[str, Any]:
    """The conversation, its transcript (timeline lines naming departments and staff by name:
    `department_name` gives a department's), earlier conversations and the reader's actions;
    the read's access-log line is written last, for the caller to commit at once (on SQLite
    the write lock is held from that INSERT to the commit, so no read waits inside it)."""
    conv = await get(session=session, conversation_id=conversation_id)
    await check(Act.VIEW, actor, conv, session)
    entries = await transcript_of(session, conv.conversation_id)
    earlier = await earlier_conversations(session, conv, actor)
    names = await staff_names(session, (e.author for e in entries if e.direction == "event"))
    await log_access(session, actor, conv.conversation_id, "read", now)
    view = queue.row_view(conv, now)
    view.update(
        {
            "patron": {
                "name": conv.patron_name,
                "contact": conv.patron_contact,
                "texted_from": conv.texted_from,
            },
            "closed_at": conv.closed_at.isoformat() if conv.closed_at else None,
            "acknowledged_by": conv.acknowledged_by,
            "care_report": await care_reports.view(session, conv),
            "blocked": blocking.view(await blocking.in_force(session, blocking.contacts_of(conv))),
            "action": conv.action,
            "risk_score": conv.risk_score,
            "read_scale": conv.read_scale,
            "topic": conv.topic,
            "replied": conv.answered_at is not None,
            "bulk": conv.bulk,
            "sender_unverified": conv.sender_unverified,
            "purged": conv.purged_at is not None,
            "messages": [
                message_view(e, names=names, department_name=department_name) for e in entries
            ],
            "earlier": [queue.row_view(c, now) for c in earlier],
            "permitted": permitted(actor, conv),
        }
    )
    return view
