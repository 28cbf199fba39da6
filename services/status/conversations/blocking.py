"""Blocking a patron's contact from the desk: a librarian blocks the phone number or email
address of a conversation they have (harassment, abuse, a bot), a supervisor unblocks it.

The block itself is ingest's: it reads `ContactBlocked` and `ContactUnblocked` from refdesk.desk
and marks the contact's later messages `blocked`, so the router routes them only when a crisis
net fires or flags them for review (a blocked patron in crisis still reaches the CARE Team),
and nothing automatic answers them. Here the desk keeps who blocked whom, from which
conversation, why and until when (`BlockedContact`), writes both to the access log, and keeps
the survey from a blocked contact when staff close their conversation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor
from services.status.conversations import actions, transcript
from services.status.conversations.access import log_accesses
from services.status.conversations.policy import Act
from services.status.errors import Conflict
from services.status.models import AnyConversation, BlockedContact, Conversation
from shared.contacts import untagged
from shared.events import ContactBlocked, ContactUnblocked
from shared.topics import DESK

NO_CONTACT = (
    "this chat came with no phone number or email address to block: end it, and ask the chat "
    "platform's administrator to ban the visitor there"
)


UNVERIFIED = (
    "the college's mail system could not verify who sent this email, so its From may be "
    "forged: blocking it would block whoever's address a forger used. Close it instead"
)
"""Why a conversation whose sender failed the mail checks is not blocked from (a forger could
otherwise get a student's own address blocked, and their later email hidden)."""


def contacts_of(conv: AnyConversation) -> list[str]:
    """The contacts a block of this conversation's patron covers: the contact it answers, and
    the number an SMS thread came from before staff made it an email ticket."""
    return [c for c in dict.fromkeys((conv.patron_contact, conv.texted_from)) if c]


def blocked_forms(contacts: list[str]) -> list[str]:
    """The forms a block of these contacts may be listed under: each, and an address without
    its "+tag" (ingest blocks eve.park+x@ under a block of eve.park@)."""
    return list(dict.fromkeys([*contacts, *(untagged(c) for c in contacts)]))


async def _in_force(session: AsyncSession, contacts: list[str]) -> list[BlockedContact]:
    """The blocks in force on any of these contacts, earliest first."""
    if not contacts:
        return []
    rows = await session.scalars(
        select(BlockedContact)
        .where(BlockedContact.contact.in_(contacts), BlockedContact.unblocked_at.is_(None))
        .order_by(BlockedContact.blocked_at, BlockedContact.id)
    )
    return list(rows.all())


async def in_force(session: AsyncSession, contacts: list[str]) -> BlockedContact | None:
    """The earliest block in force on any of these contacts (an address's untagged form too,
    as ingest reads it), or None."""
    return next(iter(await _in_force(session, blocked_forms(contacts))), None)


def view(row: BlockedContact | None) -> dict[str, Any] | None:
    """A block as the API answers it (None: the patron is not blocked)."""
    if row is None:
        return None
    return {
        "id": row.id,
        "blocked_at": row.blocked_at.isoformat(),
        "blocked_by": row.blocked_by,
        "reason": row.reason,
        "conversation_id": row.conversation_id,
    }


async def block(
    *, session: AsyncSession, conversation_id: str, reason: str, actor: Actor, now: datetime
) -> actions.Outcome:
    """Block the patron of a conversation the actor has (or nobody has), open or closed: each
    of its contacts not blocked yet. Refused for a chat with no contact (Conflict), and for a
    crisis not yet acknowledged (the policy's crisis gate)."""
    conv = await actions.get(session=session, conversation_id=conversation_id)
    await actions.check(Act.BLOCK, actor, conv, session)
    contacts = contacts_of(conv)
    if not contacts:
        raise Conflict(NO_CONTACT)
    if conv.sender_unverified:
        raise Conflict(UNVERIFIED)
    already = {row.contact for row in await _in_force(session, contacts)}
    events: list[tuple[str, Any]] = []
    for contact in contacts:
        if contact in already:
            continue
        event = ContactBlocked(
            contact=contact,
            conversation_id=conv.conversation_id,
            staff_id=actor.id,
            reason=reason,
            at=now,
        )
        await record_block(session, event)
        await transcript.on_contact_blocked(session, conv, event)
        events.append((DESK.name, event))
    if events:
        # not the reason: it may name the patron, and the access log outlives the block's
        # row and the transcript (an outside review found a lifted block's reason there a
        # year on); the block's row and transcript line keep it for their retention
        await log_accesses(session, actor, [conv.conversation_id], "block", now)
    await session.flush()
    return actions.Outcome(conv, events)


async def unblock_conversation(
    *, session: AsyncSession, conversation_id: str, actor: Actor, now: datetime
) -> actions.Outcome:
    """Unblock the patron of a conversation (supervisors): every block in force on its
    contacts. Conflict when none is."""
    conv = await actions.get(session=session, conversation_id=conversation_id)
    await actions.check(Act.UNBLOCK, actor, conv, session)
    rows = await _in_force(session, blocked_forms(contacts_of(conv)))
    if not rows:
        raise Conflict("this patron is not blocked")
    lifted = _unblock(rows, actor, now)
    for event in lifted:
        await transcript.on_contact_unblocked(session, conv, event)
    await log_accesses(session, actor, [conv.conversation_id], "unblock", now)
    await session.flush()
    return actions.Outcome(conv, [(DESK.name, event) for event in lifted])


async def unblock_entry(
    *, session: AsyncSession, entry_id: int, actor: Actor, now: datetime
) -> list[tuple[str, Any]]:
    """Unblock one entry of the blocked senders' list (supervisors; the caller checks the role).
    Conflict when it was unblocked already."""
    row = await session.get(BlockedContact, entry_id)
    if row is None or row.unblocked_at is not None:
        raise Conflict("this sender is not blocked (a colleague may have just unblocked them)")
    (lifted,) = _unblock([row], actor, now)
    conv = await session.get(Conversation, row.conversation_id) if row.conversation_id else None
    if conv is not None and conv.purged_at is None:
        await transcript.on_contact_unblocked(session, conv, lifted)
    await log_accesses(session, actor, [row.conversation_id], "unblock", now)
    await session.flush()
    return [(DESK.name, lifted)]


def _unblock(rows: list[BlockedContact], actor: Actor, now: datetime) -> list[ContactUnblocked]:
    """Lift the blocks; the events saying so."""
    for row in rows:
        row.unblocked_at, row.unblocked_by = now, actor.id
    return [
        ContactUnblocked(
            contact=row.contact, conversation_id=row.conversation_id, staff_id=actor.id, at=now
        )
        for row in rows
    ]


async def listing(session: AsyncSession, *, limit: int = 500) -> list[BlockedContact]:
    """Blocks in force, newest first, then those lifted, newest first."""
    rows = await session.scalars(
        select(BlockedContact)
        .order_by(
            BlockedContact.unblocked_at.is_not(None),
            BlockedContact.unblocked_at.desc(),
            BlockedContact.blocked_at.desc(),
        )
        .limit(limit)
    )
    return list(rows.all())


# -- the desk's events, applied (a rebuild, or another replica's block) ----------------------


async def record_block(session: AsyncSession, data: ContactBlocked) -> None:
    """A block in the list, once: the same block (contact and moment) read again adds nothing."""
    same = await session.scalar(
        select(BlockedContact.id).where(
            BlockedContact.contact == data.contact, BlockedContact.blocked_at == data.at
        )
    )
    if same is None:
        await session.execute(
            insert(BlockedContact).values(
                contact=data.contact,
                conversation_id=data.conversation_id,
                reason=data.reason,
                blocked_by=data.staff_id,
                blocked_at=data.at,
            )
        )


async def record_unblock(session: AsyncSession, data: ContactUnblocked) -> None:
    """Every block of the contact made before the unblock is lifted (once)."""
    await session.execute(
        update(BlockedContact)
        .where(
            BlockedContact.contact == data.contact,
            BlockedContact.unblocked_at.is_(None),
            BlockedContact.blocked_at <= data.at,
        )
        .values(unblocked_at=data.at, unblocked_by=data.staff_id)
    )


async def purge_lifted(session: AsyncSession, *, now: datetime, kept: timedelta) -> int:
    """Blocks lifted longer ago than the transcripts are kept are deleted (student data)."""
    result = await session.execute(
        delete(BlockedContact).where(BlockedContact.unblocked_at < now - kept)
    )
    return int(getattr(result, "rowcount", 0) or 0)
