"""Conversations as JSON: list and search, read a transcript, reply, note, claim, transfer,
close, acknowledge, convert. Bearer token or the console's session cookie; every action goes
through the policy table (403 problem+json, nothing changed)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.status import queue
from services.status.conversations import access, actions, blocking, care_reports, reading, search
from services.status.conversations.macros import fill
from services.status.conversations.policy import Act, permitted
from services.status.deps import ActorDep, ResourcesDep, SessionDep
from services.status.errors import InvalidInput
from services.status.openapi import ACTION, FOUND, SIGNED_IN
from services.status.resources import deliver, keyed
from services.status.stats.desktime import check_days
from services.status.topics import TOPICS
from shared.events import Channel
from shared.text import CLEANED, Text

router = APIRouter(prefix="/conversations", tags=["conversations"], responses=SIGNED_IN)

ReplyText = Annotated[str, StringConstraints(min_length=1, max_length=5000), CLEANED]
SubjectText = Annotated[str, StringConstraints(max_length=300), CLEANED]
HandoffText = Annotated[str, StringConstraints(max_length=1000), CLEANED]


class ReplyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "Hi, this is NW Circulation. I've renewed it: it's now due in 3 weeks."},
                {"macro": "circulation_details"},
            ]
        },
    )

    text: ReplyText | None = None
    macro: str | None = Field(None, max_length=64)
    subject: SubjectText | None = Field(None, description="email only")

    @model_validator(mode="after")
    def _one_of(self) -> ReplyIn:
        if (self.text is None) == (self.macro is None):
            raise ValueError("send either text or macro")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self


class NoteIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "Renewed once already; the second renewal needs NW Circulation."}]
        },
    )

    text: Text = Field(min_length=1, max_length=5000)


class TransferIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "department": "nw-circulation",
                    "note": "I'm transferring you to NW Circulation. Someone from NW Circulation "
                    "will join in a moment to help with your loan, renewal or due date.",
                },
                {"department": "writing-center"},
            ]
        },
    )

    department: str = Field(min_length=1, max_length=64)
    note: HandoffText | None = Field(None, description="the hand-off text the patron gets")


class BlockIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Threatening messages to staff, 3 nights"}]},
    )

    reason: Text = Field(
        min_length=1,
        max_length=255,
        description="why, in a sentence supervisors read on the blocked senders' list",
    )

    @model_validator(mode="after")
    def _said(self) -> BlockIn:
        if not self.reason.strip():
            raise ValueError("say why the sender is blocked")
        return self


class CloseIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"read_scale": 2, "topic": "circulation"}, {}]},
    )

    read_scale: int | None = Field(None, ge=1, le=6, description="READ Scale effort, 1-6")
    topic: str | None = Field(None, description="one of " + ", ".join(TOPICS))
    survey: bool | None = Field(
        None,
        description="send the email or SMS patron the survey; unset: only if staff replied to "
        "them (the survey says their question was answered)",
    )
    seen: str | None = Field(
        None,
        max_length=200,
        description="the id of the latest transcript line the closer saw (the console sends "
        "it): a message the patron wrote after it refuses the close with 409, so a question "
        "that arrived as Close was pressed is read, not answered with a survey",
    )


class ConvertIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "ana.gomez@my.tccd.edu"}]}
    )

    email: str = Field(min_length=1, max_length=320, description="checked by the action")


@router.get("", summary="Conversations the caller may see, in desk order, or a search")
async def list_conversations(
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
    state: Annotated[str, Query(pattern="^(open|closed|all)$")] = "open",
    department: Annotated[str | None, Query(max_length=64)] = None,
    channel: Channel | None = None,
    mine: bool = False,
    unassigned: bool = False,
    overnight: bool | None = None,
    crisis: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="words in any message")] = None,
    contact: Annotated[
        str | None,
        Query(max_length=320, description="the patron's email address or phone number, as typed"),
    ] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = queue.DEFAULT_LIMIT,
    pin_crises: Annotated[
        bool,
        Query(
            description="list the open crises and possible crises you may see as well, "
            "whatever the other filters say (the console's queue does)"
        ),
    ] = False,
) -> dict[str, Any]:
    """Each item has the queue row plus `preview`, the start of the patron's latest message."""
    wrong = check_days(date_from, date_to)
    if wrong is not None:
        raise InvalidInput(wrong)
    matches = None
    if q or contact or date_from or date_to:
        matches = search.matching(
            dialect=session.get_bind().dialect.name,
            text=q,
            contact=contact,
            date_from=date_from,
            date_to=date_to,
        )
        state = "all" if state == "open" and not (mine or unassigned) else state
    flt = queue.QueueFilter(
        state=state,
        department=department,
        channel=channel,
        mine=mine,
        unassigned=unassigned,
        overnight=overnight,
        crisis=crisis,
        matches=matches,
        limit=limit,
        pin_crises=pin_crises,
    )
    rows = await queue.listing(session=session, actor=actor, flt=flt)
    now = res.clock()
    items = [queue.row_view(c, now) for c in rows]
    # a full page may not be all: how many there are (the console says "200 of 310")
    total = (
        await queue.listed_in_all(session=session, actor=actor, flt=flt)
        if len(rows) >= limit
        else len(rows)
    )
    if matches is not None or state != "open":
        # a search, or a list of closed conversations, shows patrons' words from any time: a
        # line per conversation it showed (or one saying it showed none), never what was
        # searched for (browsing closed conversations had left no trace: an outside review)
        shown = [item["conversation_id"] for item in items] or [None]
        await access.log_shown(
            session, actor, shown, "search" if matches is not None else "list", now
        )
        await session.commit()
    return {"items": items, "total": total}


@router.get("/{conversation_id}", summary="One conversation with its transcript", responses=FOUND)
async def get_conversation(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """`messages`: each {direction: in|out|note|event, text, at, author, delivery}, an event's
    text naming departments and staff by name (`author` stays the id); a line `in` that a mail
    system sent says so in `automatic` (`auto_reply`, `bounce`); every read is
    written to the transcript access log."""
    view = await reading.conversation_view(
        session=session,
        conversation_id=conversation_id,
        actor=actor,
        now=res.clock(),
        department_name=res.book.department_name,
    )
    await session.commit()
    return view


@router.get(
    "/{conversation_id}/macros/{macro_id}",
    summary="A macro filled for this conversation",
    responses=FOUND,
)
async def filled_macro(
    conversation_id: str, macro_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """The text the composer inserts; 422 names a variable this conversation cannot fill."""
    conv = await actions.get(session=session, conversation_id=conversation_id)
    await actions.check(Act.VIEW, actor, conv, session)
    macro = res.book.patron_macro(macro_id, conv.channel)
    text = fill(macro.for_channel(conv.channel, conv.lang), actions.macro_values(conv, res.book))
    # a filled macro can name the patron ("Hi Wanda"): a read of their record, logged
    await access.log_access(session, actor, conv.conversation_id, "macro", res.clock())
    await session.commit()
    return {"macro": macro.id, "label": macro.label, "text": text}


@router.post(
    "/{conversation_id}/replies",
    status_code=202,
    summary="Reply to the patron",
    responses=ACTION,
)
async def post_reply(
    conversation_id: str, body: ReplyIn, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Queued for the notifier on the conversation's channel; the same reply sent twice (retry,
    double click, second tab) is one message. 202 with the message id."""
    text = body.text
    if body.macro is not None:
        conv = await actions.get(session=session, conversation_id=conversation_id)
        await actions.check(Act.VIEW, actor, conv, session)  # before the macro says anything
        macro = res.book.patron_macro(body.macro, conv.channel)
        text = fill(
            macro.for_channel(conv.channel, conv.lang), actions.macro_values(conv, res.book)
        )
    assert text is not None
    outcome, message_id, _first = await actions.reply(
        session=session,
        conversation_id=conversation_id,
        text=text,
        actor=actor,
        now=res.clock(),
        subject=body.subject,
    )
    await deliver(res, session, keyed(outcome.events, conversation_id))
    return {"message_id": message_id, "state": "queued", "conversation_id": conversation_id}


@router.post(
    "/{conversation_id}/notes", status_code=201, summary="Add an internal note", responses=ACTION
)
async def post_note(
    conversation_id: str, body: NoteIn, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Seen by staff only, never sent to the patron."""
    outcome, note_id = await actions.add_note(
        session=session,
        conversation_id=conversation_id,
        text=body.text.strip(),
        actor=actor,
        now=res.clock(),
    )
    await deliver(res, session, keyed(outcome.events, conversation_id))
    return {"note_id": note_id, "conversation_id": conversation_id}


async def _done(
    res: ResourcesDep, session: SessionDep, outcome: actions.Outcome, actor: ActorDep
) -> dict[str, Any]:
    await deliver(res, session, keyed(outcome.events, outcome.conv.conversation_id))
    row = queue.row_view(outcome.conv, res.clock())
    row["permitted"] = permitted(actor, outcome.conv)
    return row


@router.post("/{conversation_id}/claim", summary="Take a conversation", responses=ACTION)
async def claim(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Assign it to the caller."""
    outcome = await actions.claim(
        session=session, conversation_id=conversation_id, actor=actor, now=res.clock()
    )
    return await _done(res, session, outcome, actor)


@router.post(
    "/{conversation_id}/release", summary="Give a claimed conversation back", responses=ACTION
)
async def release(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Unassign it: the caller's own (a supervisor's, anyone's); 409 when nobody has it."""
    outcome = await actions.release(
        session=session, conversation_id=conversation_id, actor=actor, now=res.clock()
    )
    return await _done(res, session, outcome, actor)


@router.post(
    "/{conversation_id}/transfer", summary="Transfer with a warm hand-off", responses=ACTION
)
async def transfer(
    conversation_id: str,
    body: TransferIn,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Publishes the routing decision and the hand-off message to the patron."""
    if body.department not in res.book.departments():
        raise InvalidInput("department: unknown department")
    outcome = await actions.transfer(
        session=session,
        conversation_id=conversation_id,
        department=body.department,
        note=body.note,
        actor=actor,
        now=res.clock(),
        book=res.book,
    )
    return await _done(res, session, outcome, actor)


@router.post(
    "/{conversation_id}/close", summary="Close (email and SMS get the survey)", responses=ACTION
)
async def close(
    conversation_id: str,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
    body: CloseIn | None = None,
) -> dict[str, Any]:
    """Publishes ConversationClosed; the router sends email and SMS tickets the survey."""
    body = body or CloseIn()
    if body.topic is not None and body.topic not in TOPICS:
        raise InvalidInput("topic: one of " + ", ".join(TOPICS))
    outcome = await actions.close(
        session=session,
        conversation_id=conversation_id,
        actor=actor,
        now=res.clock(),
        read_scale=body.read_scale,
        topic=body.topic,
        survey=body.survey,
        seen=body.seen,
    )
    return await _done(res, session, outcome, actor)


@router.post("/{conversation_id}/acknowledge", summary="Acknowledge a crisis", responses=ACTION)
async def acknowledge(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Stops the crisis re-escalation and unlocks the conversation's other actions."""
    outcome = await actions.acknowledge(
        session=session, conversation_id=conversation_id, actor=actor, now=res.clock()
    )
    return await _done(res, session, outcome, actor)


@router.post(
    "/{conversation_id}/care-report",
    summary="Record that you filed the CARE Team's incident report",
    responses=ACTION,
)
async def care_report(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """For a patron the librarian believes is in crisis (flagged or not, open or closed): the
    report itself is filed in the college's own system; refdesk records who filed it and when.
    Each staff member keeps a record (`care_report.records`); the earliest is shown first. Your
    second press is answered with your record."""
    outcome = await actions.care_report_filed(
        session=session, conversation_id=conversation_id, actor=actor, now=res.clock()
    )
    row = await _done(res, session, outcome, actor)
    return row | {"care_report": care_reports.describe(outcome.conv, outcome.care_records)}


@router.post(
    "/{conversation_id}/care-report/withdraw",
    summary="Take back the record of a CARE Team report (pressed by mistake, or never sent)",
    responses=ACTION,
)
async def care_report_withdraw(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Your own record; a supervisor without one takes back the record shown (the earliest).
    A colleague's record still standing is shown then (409 when none is recorded)."""
    outcome = await actions.care_report_withdrawn(
        session=session, conversation_id=conversation_id, actor=actor, now=res.clock()
    )
    row = await _done(res, session, outcome, actor)
    return row | {"care_report": care_reports.describe(outcome.conv, outcome.care_records)}


@router.post(
    "/{conversation_id}/block",
    summary="Block the patron's phone number or email address",
    responses=ACTION,
)
async def block(
    conversation_id: str, body: BlockIn, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """For a sender harassing the desk or flooding it (open or closed conversation, the
    crisis acknowledged first): their later messages are kept but reach the desk only when
    the router's crisis net escalates or flags them, nothing automatic answers them (a crisis
    still gets the crisis resources), and a close sends them no survey. 409 for a chat with no
    contact, or an email whose sender could not be verified. Supervisors unblock."""
    outcome = await blocking.block(
        session=session,
        conversation_id=conversation_id,
        reason=body.reason.strip(),
        actor=actor,
        now=res.clock(),
    )
    row = await _done(res, session, outcome, actor)
    blocked = await blocking.in_force(session, blocking.contacts_of(outcome.conv))
    return row | {"blocked": blocking.view(blocked)}


@router.post(
    "/{conversation_id}/unblock",
    summary="Unblock the patron's phone number or email address (supervisors)",
    responses=ACTION,
)
async def unblock(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Lift every block on the conversation's contacts; 409 when none is in force."""
    outcome = await blocking.unblock_conversation(
        session=session, conversation_id=conversation_id, actor=actor, now=res.clock()
    )
    return await _done(res, session, outcome, actor) | {"blocked": None}


@router.post(
    "/{conversation_id}/convert-to-email",
    summary="An SMS thread becomes an email ticket",
    responses=ACTION,
)
async def convert_to_email(
    conversation_id: str,
    body: ConvertIn,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
) -> dict[str, Any]:
    """The conversation keeps its id and history."""
    outcome = await actions.convert_to_email(
        session=session,
        conversation_id=conversation_id,
        email=body.email.lower(),
        actor=actor,
        now=res.clock(),
    )
    return await _done(res, session, outcome, actor)
