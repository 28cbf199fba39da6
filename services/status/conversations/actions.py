"""What staff do with a conversation: claim, transfer, close, acknowledge a crisis, convert an
SMS thread to email, add a note, reply. Each checks the policy table first, changes the
session (the caller commits) and returns the events to publish after the commit."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.status import presence, queue
from services.status.auth import Actor, has_role
from services.status.conversations import blocking, care_reports, transcript
from services.status.conversations.macros import MacroBook, first_name
from services.status.conversations.policy import DESK as DESK_DEPARTMENT
from services.status.conversations.policy import Act, HeldByColleague, TakenFromDesk
from services.status.conversations.policy import check as check_policy
from services.status.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.status.metrics import REFUSED, observe_first_response
from services.status.models import CareReport, Conversation, Staff, TranscriptEntry
from services.status.staff import EMAIL_PATTERN, staff_names
from services.status.topics import NOT_A_QUESTION
from shared.events import (
    Action,
    CareReportFiled,
    CareReportWithdrawn,
    Channel,
    ConversationClaimed,
    ConversationClosed,
    ConversationConverted,
    ConversationReleased,
    CrisisAcknowledged,
    DeliveryState,
    HandoffContext,
    NotificationKind,
    NotificationRequested,
    Priority,
    RoutingDecided,
    StaffNoteAdded,
    StaffReplyContext,
    derived_id,
)
from shared.topics import DESK, INTERACTIONS, NOTIFICATIONS, ROUTING

log = logging.getLogger(__name__)

STAFF_POLICY = "staff"
PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|(?<![\\\w])\{[^\W\d][\w ]{0,30}\}")
"""A macro's variable left unfilled ("{reply_by}", "{nombre}", "{first name}") or template
syntax ("{{ name }}"); never a LaTeX command's argument ("\\cite{smith}") nor a set ("{1, 2}")."""


@dataclass
class Outcome:
    """The conversation after an action, and the events to publish once it is committed."""

    conv: Conversation
    events: list[tuple[str, BaseModel]] = field(default_factory=list)
    # the CARE Team report records standing after a care report action (its answer shows them)
    care_records: list[CareReport] = field(default_factory=list)


async def get(*, session: AsyncSession, conversation_id: str) -> Conversation:
    """A conversation; NotFound otherwise."""
    conv = await session.get(Conversation, conversation_id)
    if conv is None or not queue.shown(conv):
        raise NotFound("no such conversation")
    return conv


async def get_open(*, session: AsyncSession, conversation_id: str, actor: Actor) -> Conversation:
    """An open conversation the actor may see; NotFound, Forbidden or Conflict otherwise. Who
    may not see it is refused before anything about it is said (that it is closed, or nobody
    has claimed it: a security probe read both from 409s on other departments' crises)."""
    conv = await get(session=session, conversation_id=conversation_id)
    await check(Act.VIEW, actor, conv, session)
    if conv.state != "open":
        raise Conflict("conversation is closed")
    return conv


def record_first_response(conv: Conversation, now: datetime) -> None:
    """Stamp (and measure) staff's first action on a conversation."""
    if conv.first_response_at is None:
        conv.first_response_at = now
        observe_first_response(conv, now)


def _assign(conv: Conversation, staff_id: str | None, now: datetime) -> None:
    conv.assignee, conv.assignee_since = staff_id, now


async def check(act: Act, actor: Actor, conv: Conversation, session: AsyncSession) -> None:
    """The policy's check; a refusal because a colleague has the conversation names them. A
    refusal of any other kind (a conversation the caller may not see, a role they lack) is
    counted and logged, staff and conversation ids only: refused attempts had left no trace
    a privacy officer could find (an outside review)."""
    try:
        check_policy(act, actor, conv)
    except (HeldByColleague, TakenFromDesk) as exc:
        name = await session.scalar(select(Staff.name).where(Staff.id == exc.assignee))
        raise exc.named(name) if name else exc from None
    except Forbidden:
        REFUSED.labels(action=act.value).inc()
        log.warning(
            "staff action refused",
            extra={"staff_id": actor.id, "act": act.value, "conversation_id": conv.conversation_id},
        )
        raise


async def _hold(session: AsyncSession, conv: Conversation, actor: Actor | None = None) -> None:
    """Take the conversation's row as this action read it (open, with the same assignee,
    department and crisis flag), or Conflict saying what changed: of two librarians claiming,
    answering, transferring or closing the same conversation at once, one goes through and
    the other is told who was first. The statement writes nothing new; it holds the row until
    the commit, so the other action waits for it and then finds the row changed. A
    conversation read unassigned that the actor has claimed since (their own Claim still in
    flight when they pressed Send) is as they read it: their reply had been refused as a
    colleague's claim, with their own name. One read before the router placed it is as they
    read it if the router placed it at the desk or in one of their departments (a reply to a
    question the router then kept at the desk had been refused); one that became a crisis
    meanwhile never is (it must be acknowledged first)."""
    c = Conversation
    if conv.assignee is None and actor is not None:
        assigned: Any = or_(c.assignee.is_(None), c.assignee == actor.id)
    else:
        assigned = c.assignee.is_(None) if conv.assignee is None else c.assignee == conv.assignee
    if conv.department is not None:
        placed: Any = c.department == conv.department
    elif actor is not None:
        theirs = sorted({DESK_DEPARTMENT, *actor.departments})
        placed = or_(c.department.is_(None), c.department.in_(theirs))
    else:
        placed = c.department.is_(None)
    held: Any = await session.execute(
        update(c)
        .where(
            c.conversation_id == conv.conversation_id,
            c.state == "open",
            assigned,
            placed,
            c.crisis.is_(True) if conv.crisis else c.crisis.is_not(True),
        )
        .values(assignee=c.assignee)
        .execution_options(synchronize_session=False)
    )
    if held.rowcount != 1:
        raise Conflict(await _changed(session, conv))


async def _changed(session: AsyncSession, conv: Conversation) -> str:
    """What another action did to the conversation since this one read it."""
    now_row = (
        await session.execute(
            select(Conversation.state, Conversation.department, Conversation.crisis, Staff.name)
            .outerjoin(Staff, Staff.id == Conversation.assignee)
            .where(Conversation.conversation_id == conv.conversation_id)
        )
    ).one()
    if now_row.state != "open":
        return "conversation is closed: it was closed a moment ago"
    if now_row.crisis and not conv.crisis:
        return "this conversation became a crisis a moment ago: acknowledge it first"
    if now_row.name and now_row.department == conv.department:
        return f"{now_row.name} took this conversation a moment ago"
    if now_row.department != conv.department and conv.department is None:
        return "the router placed this conversation in another department a moment ago"
    if now_row.department != conv.department:
        return "this conversation was transferred to another department a moment ago"
    return "this conversation changed a moment ago: reload it"


async def claim(
    *, session: AsyncSession, conversation_id: str, actor: Actor, now: datetime
) -> Outcome:
    """Assign a conversation to the actor; someone else's only for supervisors."""
    conv = await get_open(session=session, conversation_id=conversation_id, actor=actor)
    await check(Act.CLAIM, actor, conv, session)
    await _hold(session, conv, actor)
    _assign(conv, actor.id, now)
    record_first_response(conv, now)
    event = ConversationClaimed(conversation_id=conv.conversation_id, staff_id=actor.id, at=now)
    await transcript.on_claimed(session, conv, event)
    await session.flush()
    return Outcome(conv, [(DESK.name, event)])


async def release(
    *,
    session: AsyncSession,
    conversation_id: str,
    actor: Actor,
    now: datetime,
    leaving: bool = False,
) -> Outcome:
    """Give a conversation back to the queue: its librarian's own, anyone's for supervisors
    (a claim by mistake, a shift's end with conversations still claimed). `leaving`: its
    librarian left the desk, deactivated or gone Offline (`_release_held`, by whoever may set
    them so): given back whatever the crisis gate says, since an unacknowledged crisis left
    with someone who has gone was one nobody but a supervisor could answer (it stays
    unacknowledged, on top of every queue, and is re-escalated as before)."""
    conv = await get_open(session=session, conversation_id=conversation_id, actor=actor)
    if conv.assignee is None:
        raise Conflict("nobody has claimed this conversation")
    if not leaving:
        await check(Act.RELEASE, actor, conv, session)
    await _hold(session, conv, actor)
    event = ConversationReleased(
        conversation_id=conv.conversation_id, staff_id=actor.id, assignee=conv.assignee, at=now
    )
    conv.assignee, conv.assignee_since = None, now
    await transcript.on_released(session, conv, event)
    await session.flush()
    return Outcome(conv, [(DESK.name, event)])


async def release_waiting(
    *, session: AsyncSession, actor: Actor, now: datetime, staff_id: str | None = None
) -> list[Outcome]:
    """At a librarian's sign-off (`staff_id`, else the actor's own: a supervisor signing
    someone off, a lapsed heartbeat): their open conversations whose patron waits for an
    answer go back to the queue, each as a release of their own. A patron who wrote a moment
    before the sign-off had stayed with an Offline librarian, whom nobody else may answer for
    (a message after it is given back by the consumer). The rows are read FOR UPDATE, so a
    message being applied at that moment is seen once it is in."""
    return await _release_held(session, staff_id or actor.id, actor, now, waiting_only=True)


async def release_all_held(
    *, session: AsyncSession, staff_id: str, actor: Actor, now: datetime
) -> list[Outcome]:
    """At a deactivation: every open conversation the leaver had goes back to the queue,
    released by the admin who deactivated them (waiting or answered: nobody could act on them
    but a supervisor, and a patron waiting there had waited until they wrote again)."""
    return await _release_held(session, staff_id, actor, now, waiting_only=False)


async def _release_held(
    session: AsyncSession, staff_id: str, actor: Actor, now: datetime, *, waiting_only: bool
) -> list[Outcome]:
    held = (
        select(Conversation.conversation_id)
        .where(Conversation.assignee == staff_id, Conversation.state == "open")
        .order_by(Conversation.conversation_id)
        .with_for_update()
    )
    if waiting_only:
        held = held.where(Conversation.waiting_since.is_not(None))
    released: list[Outcome] = []
    for cid in (await session.execute(held)).scalars().all():
        try:
            released.append(
                await release(
                    session=session,
                    conversation_id=cid,
                    actor=actor,
                    now=now,
                    leaving=True,
                )
            )
        except (Conflict, Forbidden, NotFound) as exc:
            # changed meanwhile (a colleague took it, it closed): not theirs to give
            log.info(
                "a held conversation was not given back",
                extra={"conversation_id": cid, "error": type(exc).__name__},
            )
    return released


def recipient(conv: Conversation) -> str:
    """Where a message to the patron goes on the conversation's channel."""
    if conv.channel != Channel.CHAT.value and conv.patron_contact:
        return conv.patron_contact
    if conv.channel != Channel.CHAT.value:
        raise Conflict("this conversation has no patron contact to send to")
    return conv.conversation_id


async def transfer(
    *,
    session: AsyncSession,
    conversation_id: str,
    department: str,
    note: str | None,
    actor: Actor,
    now: datetime,
    book: MacroBook,
) -> Outcome:
    """Move a conversation to another department: the routing decision and warm hand-off."""
    conv = await get_open(session=session, conversation_id=conversation_id, actor=actor)
    await check(Act.TRANSFER, actor, conv, session)
    if department == conv.department:
        raise Conflict("conversation is already with that department")
    await _hold(session, conv, actor)
    conv.department, conv.note = department, note
    _assign(conv, None, now)
    record_first_response(conv, now)
    if note and PLACEHOLDER.search(note):
        raise InvalidInput("the hand-off message still holds a {variable}: fill it in or remove it")
    decision_id = str(uuid.uuid4())
    text = note
    if not text and not conv.crisis:
        staffed = (await presence.online_counts(session=session))[department] > 0
        text = book.handoff(department, channel=conv.channel, staffed=staffed, lang=conv.lang)
    decision = RoutingDecided(
        decision_id=decision_id,
        interaction_id=conv.last_interaction_id or conv.conversation_id,
        conversation_id=conv.conversation_id,
        channel=Channel(conv.channel),
        action=Action.TRANSFER,
        department=department,
        priority=Priority(conv.priority),
        overnight=conv.overnight,
        handoff_text=text,
        policy_version=STAFF_POLICY,
        decided_at=now,
        decided_by=actor.id,
        lang=conv.lang,
    )
    # an email hand-off answers the patron's latest email, under their subject (it had started
    # a thread of its own, "Your question is going to ..." with the ticket's tag)
    latest = (await _thread(session, conv))[0] if conv.channel == Channel.EMAIL.value else None
    handoff = NotificationRequested(
        idempotency_key=derived_id(decision_id, "handoff"),
        kind=NotificationKind.HANDOFF,
        channel=Channel(conv.channel),
        recipient=recipient(conv),
        conversation_id=conv.conversation_id,
        interaction_id=conv.last_interaction_id,
        priority=Priority(conv.priority),
        requested_at=now,
        context=HandoffContext(
            department_name=book.department_name(department),
            handoff_text=text,
            lang=conv.lang,
            in_reply_to=latest,
            subject=conv.subject if latest else None,
        ).model_dump(mode="json"),
    )
    await transcript.on_routing(session, conv, decision)
    # mailed to many: a hand-off would reach the whole list; a crisis gets no prepared hand-off
    # ("...will reply to help with your citations" to a patron who wrote of taking pills: an
    # outside patron-safety review), only words the librarian wrote
    if conv.bulk or (conv.crisis and not note):
        await session.flush()
        return Outcome(conv, [(ROUTING.name, decision)])
    await transcript.on_notification(session, conv, handoff)
    await session.flush()
    return Outcome(conv, [(ROUTING.name, decision), (NOTIFICATIONS.name, handoff)])


async def close(
    *,
    session: AsyncSession,
    conversation_id: str,
    actor: Actor,
    now: datetime,
    read_scale: int | None = None,
    topic: str | None = None,
    survey: bool | None = None,
    seen: str | None = None,
) -> Outcome:
    """Close a conversation; the event the router turns into the survey command. `survey`
    None: the patron gets it only if staff replied to them (it says their question was
    answered) and did not set it aside as not a question; never to mail sent to many (the
    survey would reach the whole list). `seen`: the latest transcript line the closer saw; a
    patron's message after it (arrived as Close was pressed) refuses the close."""
    conv = await get_open(session=session, conversation_id=conversation_id, actor=actor)
    await check(Act.CLOSE, actor, conv, session)
    await _hold(session, conv, actor)
    if seen is not None:
        await _nothing_new_since(session, conv, seen)
    # never before the latest message the row holds (read afresh, the row held): a message
    # applied a moment ago is in the closed conversation, and its events say so in the same
    # order (the statistics had counted such a conversation reopened, the queue closed)
    held = (
        await session.execute(
            select(Conversation.last_message_at, Conversation.last_patron_at).where(
                Conversation.conversation_id == conv.conversation_id
            )
        )
    ).one()
    if held.last_message_at is not None and held.last_message_at > now:
        now = held.last_message_at
    conv.state, conv.closed_at, conv.closed_by = "closed", now, actor.id
    conv.closed_through = held.last_patron_at  # what it accounted for: a later message reopens
    conv.read_scale, conv.topic = read_scale, topic
    record_first_response(conv, now)
    latest, references = (
        await _thread(session, conv) if conv.channel == Channel.EMAIL.value else (None, [])
    )
    closed = ConversationClosed(
        conversation_id=conv.conversation_id,
        channel=Channel(conv.channel),
        closed_at=now,
        closed_by=actor.id,
        patron_contact=conv.patron_contact,
        reason="closed",
        read_scale=read_scale,
        topic=topic,
        lang=conv.lang,
        # never to mail sent to many, nor to a patron the desk blocked (an outside review saw
        # a harasser blocked from their conversation thanked for asking when it closed)
        survey=not conv.bulk
        and await blocking.in_force(session, blocking.contacts_of(conv)) is None
        and (
            survey
            if survey is not None
            # set aside as not a question (a wrong number, spam): nobody to thank
            else topic != NOT_A_QUESTION and await _a_reply_went_out(session, conv)
        ),
        in_reply_to=latest,
        references=references if latest else [],
        subject=conv.subject if latest else None,
        through=held.last_patron_at,
    )
    await transcript.on_closed(session, conv, closed)
    await session.flush()
    return Outcome(conv, [(INTERACTIONS.name, closed)])


async def _nothing_new_since(session: AsyncSession, conv: Conversation, seen: str) -> None:
    """Conflict if the patron wrote after the line `seen` (the row is held: read afresh, a
    message the consumer applied a moment ago counts). An unknown line checks nothing."""
    seen_at = await session.scalar(
        select(TranscriptEntry.at).where(
            TranscriptEntry.id == seen, TranscriptEntry.conversation_id == conv.conversation_id
        )
    )
    patron_at = await session.scalar(
        select(Conversation.last_patron_at).where(
            Conversation.conversation_id == conv.conversation_id
        )
    )
    if seen_at is not None and patron_at is not None and patron_at > seen_at:
        raise Conflict("the patron wrote again a moment ago: read their message, then close")


async def _a_reply_went_out(session: AsyncSession, conv: Conversation) -> bool:
    """Whether staff answered the patron with a reply that was not refused or bounced: the
    survey says their question was answered, and a survey to an address that refused every
    reply would be refused too (an outside probe's reply refused 550 still asked for one)."""
    if conv.answered_at is None:
        return False
    found = await session.execute(
        select(TranscriptEntry.id)
        .where(
            TranscriptEntry.conversation_id == conv.conversation_id,
            TranscriptEntry.kind == NotificationKind.STAFF_REPLY.value,
            or_(
                TranscriptEntry.delivery_state.is_(None),
                TranscriptEntry.delivery_state.not_in(
                    (DeliveryState.FAILED.value, transcript.UNDELIVERED)
                ),
            ),
        )
        .limit(1)
    )
    return found.first() is not None


async def acknowledge(
    *, session: AsyncSession, conversation_id: str, actor: Actor, now: datetime
) -> Outcome:
    """Acknowledge a crisis, which stops its re-escalation."""
    conv = await get_open(session=session, conversation_id=conversation_id, actor=actor)
    await check(Act.ACKNOWLEDGE, actor, conv, session)
    if not conv.crisis:
        raise Conflict("conversation is not a crisis")
    events: list[tuple[str, BaseModel]] = []
    if conv.acknowledged_at is None:
        conv.acknowledged_at, conv.acknowledged_by = now, actor.id
        event = CrisisAcknowledged(conversation_id=conv.conversation_id, staff_id=actor.id, at=now)
        await transcript.on_acknowledged(session, conv, event)
        events.append((DESK.name, event))
    await session.flush()
    return Outcome(conv, events)


async def care_report_filed(
    *, session: AsyncSession, conversation_id: str, actor: Actor, now: datetime
) -> Outcome:
    """Record that the actor filed the CARE Team's incident report on this conversation's
    patron (open or closed: the report is often filed after the chat ends). Each staff member
    keeps a record of their own (`care_reports.py`); the conversation shows the earliest. A
    second press by the same staff member, on any replica, answers with their record and
    publishes nothing."""
    conv = await get(session=session, conversation_id=conversation_id)
    await check(Act.CARE_REPORT, actor, conv, session)
    await care_reports.lock(session, conv.conversation_id)
    events: list[tuple[str, BaseModel]] = []
    if await care_reports.record(session, conv.conversation_id, actor.id, now):
        event = CareReportFiled(conversation_id=conv.conversation_id, staff_id=actor.id, at=now)
        await transcript.on_care_report(session, conv, event)
        events.append((DESK.name, event))
    standing = await care_reports.settle(session, conv)
    await session.flush()
    return Outcome(conv, events, standing)


async def care_report_withdrawn(
    *, session: AsyncSession, conversation_id: str, actor: Actor, now: datetime
) -> Outcome:
    """Take back a record of the CARE Team incident report: pressed by mistake, or the report
    was never sent. The actor's own record; a supervisor without one takes back the record the
    conversation shows (the earliest). A colleague's record still standing is shown then, so
    nobody takes a report as filed that was not, nor as unfiled that was."""
    conv = await get(session=session, conversation_id=conversation_id)
    await check(Act.CARE_REPORT, actor, conv, session)
    await care_reports.lock(session, conv.conversation_id)
    records = await care_reports.standing(session, conv.conversation_id)
    if not records:
        raise Conflict("no CARE Team report is recorded on this conversation")
    own = [r for r in records if r.staff_id == actor.id]
    if not own and not has_role(actor, "supervisor"):
        raise Forbidden("only who recorded the CARE Team report, or a supervisor, may take it back")
    taken = (own or records)[0]
    filed_at, filed_by = taken.filed_at, taken.staff_id
    events: list[tuple[str, BaseModel]] = []
    withdrawn = await care_reports.withdraw(
        session, conv.conversation_id, filed_by=filed_by, filed_at=filed_at, by=actor.id, at=now
    )
    if withdrawn:
        event = CareReportWithdrawn(
            conversation_id=conv.conversation_id,
            staff_id=actor.id,
            filed_by=filed_by,
            filed_at=filed_at,
            at=now,
        )
        await transcript.on_care_report_withdrawn(session, conv, event)
        events.append((DESK.name, event))
    standing = await care_reports.settle(session, conv)
    await session.flush()
    return Outcome(conv, events, standing)


def _deliverable_address(email: str) -> str:
    """The address as the notifier will send to it, or InvalidInput in staff's words: the
    pattern alone let "<x>@y.z" through, and the notifier dead-lettered the reply to it."""
    if not re.fullmatch(EMAIL_PATTERN, email):
        # said as staff read it: the pattern means nothing to them ("ana.gomez@my")
        raise InvalidInput(f"Enter a full address such as {EXAMPLE_ADDRESS}.")
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidInput(
            f"That is not an address mail can go to. Enter one such as {EXAMPLE_ADDRESS}."
        ) from None


async def convert_to_email(
    *, session: AsyncSession, conversation_id: str, email: str, actor: Actor, now: datetime
) -> Outcome:
    """Turn an SMS thread into an email ticket under the same id (its history stays)."""
    conv = await get_open(session=session, conversation_id=conversation_id, actor=actor)
    await check(Act.CONVERT, actor, conv, session)
    if conv.channel != Channel.SMS.value:
        raise Conflict("only SMS conversations can be converted to email")
    email = _deliverable_address(email)
    # as read: a close or a transfer at the same moment (another tab, a supervisor) wins or loses
    # whole, never both (a closed conversation had been converted)
    await _hold(session, conv, actor)
    conv.texted_from = conv.patron_contact
    conv.channel, conv.converted_from, conv.patron_contact = Channel.EMAIL.value, "sms", email
    event = ConversationConverted(
        conversation_id=conv.conversation_id, staff_id=actor.id, email=email, at=now
    )
    await transcript.on_converted(session, conv, event)
    await session.flush()
    return Outcome(conv, [(DESK.name, event)])


async def add_note(
    *, session: AsyncSession, conversation_id: str, text: str, actor: Actor, now: datetime
) -> tuple[Outcome, str]:
    """An internal note (never sent to the patron). The same words from the same librarian
    within `REPEAT_WINDOW` are the same note (a retry after a 503 "saved, not confirmed yet",
    a double click), published again under its id; later, they are a new note."""
    conv = await get(session=session, conversation_id=conversation_id)
    await check(Act.NOTE, actor, conv, session)
    digest = hashlib.sha256(text.encode()).hexdigest()
    first = derived_id(conv.conversation_id, "note", actor.id, digest)
    note_id, existing = await _repeat_slot(session, first, now, line=lambda i: f"note:{i}")
    note = StaffNoteAdded(
        note_id=note_id,
        conversation_id=conv.conversation_id,
        staff_id=actor.id,
        text=text,
        at=existing.at if existing is not None else now,
    )
    if existing is None:
        await transcript.on_note(session, conv, note)
        await session.flush()
    return Outcome(conv, [(DESK.name, note)]), f"note:{note.note_id}"


def macro_values(conv: Conversation, book: MacroBook) -> dict[str, str | None]:
    """What a macro may fill in for this conversation."""
    values: dict[str, str | None] = dict(book.data().links)
    values["patron_first_name"] = first_name(conv.patron_name)
    values["department_name"] = book.department_name(conv.department or "reference")
    return values


_PERSONS = or_(
    TranscriptEntry.kind.is_(None), TranscriptEntry.kind.not_in(sorted(transcript.AUTOMATIC_KINDS))
)
"""Lines a person wrote or was sent: a reply answers the patron, never an automatic reply or
a bounce."""


async def _thread(session: AsyncSession, conv: Conversation) -> tuple[str | None, list[str]]:
    """The patron's latest Message-ID (their own email, not another sender's in the thread)
    and the thread's ids, oldest first (email threading).

    Only emails count: a conversation converted from SMS has Twilio MessageSids on its texts,
    and a first email must not claim to answer an email that never existed."""
    rows = await session.execute(
        select(TranscriptEntry.message_id)
        .where(
            TranscriptEntry.conversation_id == conv.conversation_id,
            TranscriptEntry.message_id.is_not(None),
            TranscriptEntry.channel == Channel.EMAIL.value,
            TranscriptEntry.direction.in_(("in", "out")),
            _PERSONS,
        )
        .order_by(TranscriptEntry.at)
    )
    ids = [row[0] for row in rows if row[0] and "@" in row[0]]
    inbound = await session.execute(
        select(TranscriptEntry.message_id)
        .where(
            TranscriptEntry.conversation_id == conv.conversation_id,
            TranscriptEntry.direction == "in",
            TranscriptEntry.channel == Channel.EMAIL.value,
            TranscriptEntry.message_id.is_not(None),
            # the patron's own: never another sender's email in the thread
            TranscriptEntry.author == transcript.PATRON,
            _PERSONS,
        )
        .order_by(TranscriptEntry.at.desc())
        .limit(1)
    )
    latest = inbound.scalar_one_or_none()
    return latest, ids[-20:]


def _reply_subject(subject: str | None) -> str:
    base = (subject or "").strip() or "Your question to the TCC Library"
    return base if re.match(r"(?i)re:", base) else f"Re: {base}"


def _email_subject(subject: str | None, *, answers: str | None) -> str | None:
    """A reply's subject: "Re: <the patron's subject>" when it answers a patron's email; with
    none to answer (a text thread converted to email), what staff wrote, else None, and the
    notifier's own subject ("Your question to the TCC Library", tagged) starts the thread."""
    if answers:
        return _reply_subject(subject)
    return (subject or "").strip() or None


EXAMPLE_ADDRESS = "name@my.tccd.edu"
"""The address shape staff are shown when one they typed is incomplete."""

SMS_REPLY_MAX = 1600
"""The most Twilio takes in one message's Body (error 21617 beyond it)."""


REPEAT_WINDOW = timedelta(seconds=60)
"""The same reply again within this is a repeat of the first (a retry, a double click)."""


def _reply_line(reply_id: str) -> str:
    return derived_id(reply_id, "staff_reply")


async def _repeat_slot(
    session: AsyncSession, first: str, now: datetime, *, line: Callable[[str], str] = _reply_line
) -> tuple[str, TranscriptEntry | None]:
    """The id of a reply (or note) whose first sending would be `first`, and its transcript
    line (`line` of the id) when it is a repeat: the latest sending of the same words, if it
    was within `REPEAT_WINDOW`, else the next sending's id (the first, then "again" 1, 2...)."""
    item_id, n = first, 0
    while (entry := await session.get(TranscriptEntry, line(item_id))) is not None:
        if now - entry.at <= REPEAT_WINDOW:
            return item_id, entry
        n += 1
        item_id = derived_id(first, "again", str(n))
    return item_id, None


async def reply(
    *,
    session: AsyncSession,
    conversation_id: str,
    text: str,
    actor: Actor,
    now: datetime,
    subject: str | None = None,
) -> tuple[Outcome, str, bool]:
    """A staff reply on the conversation's channel, as a notification command.

    The reply's id is derived from the conversation, the author, the text and the patron
    message it answers: a retry, a double click or the same reply from a second tab within
    `REPEAT_WINDOW` of the first is one reply (True on the first call, False on a repeat), and
    the notifier sends it once. The same words sent again later ("Are you still there?") are
    a reply of their own.
    """
    conv = await get_open(session=session, conversation_id=conversation_id, actor=actor)
    await check(Act.REPLY, actor, conv, session)
    if PLACEHOLDER.search(text):
        raise InvalidInput("the reply still holds a {variable}: fill it in or remove it")
    if conv.channel == Channel.SMS.value and len(text.strip()) > SMS_REPLY_MAX:
        raise InvalidInput(
            f"a text message holds at most {SMS_REPLY_MAX:,} characters "
            f"(this one has {len(text.strip()):,}): shorten it, send it as two, "
            "or convert the conversation to email"
        )
    latest, references = await _thread(session, conv)
    digest = hashlib.sha256(text.strip().encode()).hexdigest()
    reply_id, existing = await _repeat_slot(
        session, derived_id(conv.conversation_id, "reply", actor.id, digest, latest or ""), now
    )
    key = derived_id(reply_id, "staff_reply")
    email = conv.channel == Channel.EMAIL.value
    context = StaffReplyContext(
        reply_id=reply_id,
        staff_id=actor.id,
        text=text.strip(),
        subject=_email_subject(subject or conv.subject, answers=latest) if email else None,
        in_reply_to=latest if email else None,
        references=references if email else [],
        lang=conv.lang,
        # an email reply is signed by who wrote it, above the desk's name
        staff_name=(await staff_names(session, [actor.id])).get(actor.id) if email else None,
    )
    command = NotificationRequested(
        idempotency_key=key,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel(conv.channel),
        recipient=recipient(conv),
        conversation_id=conv.conversation_id,
        interaction_id=conv.last_interaction_id,
        priority=Priority(conv.priority),
        context=context.model_dump(mode="json"),
        requested_at=existing.at if existing is not None else now,
    )
    if existing is None:
        await _hold(session, conv, actor)
        if conv.assignee is None:
            _assign(conv, actor.id, now)  # answering a conversation takes it
        record_first_response(conv, now)
        await transcript.on_notification(session, conv, command)
        await session.flush()
    # a repeat publishes the same command again: harmless (one key), and it covers a first
    # attempt whose publish failed after its commit
    return Outcome(conv, [(NOTIFICATIONS.name, command)]), key, existing is None
