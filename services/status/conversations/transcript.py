"""Transcript lines from events: what the patron wrote, what mail systems sent (automatic
replies, bounces), what was sent to the patron, staff notes and the timeline. Every line's id
is derived from its event, so a redelivered or replayed event rewrites the same line (a rewound
consumer group rebuilds transcripts). Timeline lines name departments and staff by id; readers
are shown their names (`reading.event_text`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from services.status import rows
from services.status.conversations.policy import desk_sees
from services.status.models import (
    AnyConversation,
    Conversation,
    ConversationRow,
    DeskChange,
    TranscriptEntry,
)
from services.status.placement import answered_keyword
from shared.events import (
    Action,
    Automatic,
    CareReportFiled,
    CareReportWithdrawn,
    Channel,
    ContactBlocked,
    ContactUnblocked,
    ConversationClaimed,
    ConversationClosed,
    ConversationConverted,
    ConversationReleased,
    ConversationTransferred,
    CrisisAcknowledged,
    DeliveryState,
    InteractionReceived,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    RoutingDecided,
    StaffNoteAdded,
)
from shared.text import without_mark_stacks

PREVIEW_CHARS = 160
PATRON = "patron"
ANOTHER_SENDER = "from:"
"""The author of a message from an address other than the conversation's patron (someone
copied on the patron's email who answered into it), followed by that address."""
REFDESK = "refdesk"
MAIL_SYSTEM = "mail-system"
"""The author of mail a mail system sent."""

PATRON_FACING: frozenset[NotificationKind] = frozenset(
    {
        NotificationKind.SURVEY,
        NotificationKind.HANDOFF,
        NotificationKind.CRISIS_RESOURCES,
        NotificationKind.AFTER_HOURS_ACK,
        NotificationKind.KEYWORD_REPLY,
        NotificationKind.STAFF_REPLY,
    }
)
"""Kinds delivered to the patron: transcript messages. Every other kind is a timeline line."""

DELIVERED = "delivered"
UNDELIVERED = "undelivered"
DELAYED = "delayed"
"""Delivery states past the notifier's `sent`: what the carrier reported about a text
(`sms_reports`: delivered, undelivered), or a mail system about an email (`bounces`:
undelivered, or delayed while it still tries)."""
WENT_OUT = frozenset({DeliveryState.SENT.value, DELIVERED, UNDELIVERED, DELAYED})
"""States a later notifier outcome never changes: a late "failed" never hides a message that
went out, and a redelivered "sent" never erases what the carrier reported."""
STAFF_REPLY_KIND = NotificationKind.STAFF_REPLY.value
CARE_ALERT_KIND = NotificationKind.CRISIS_ALERT.value
REPLY_OVERDUE = timedelta(minutes=3)
"""How long a staff reply may wait for the notifier before its line says "Not sent yet" and the
patron counts as waiting again (`sweep.reopen_unsent`)."""
"""The `kind` of a staff reply's line."""

STAFF_FACING_TEXT: dict[NotificationKind, str] = {
    NotificationKind.CIRCULATION_EMAIL: "Circulation managers emailed",
    NotificationKind.CRISIS_ALERT: "CARE Team alerted",
    NotificationKind.CRISIS_REESCALATION: "Crisis re-escalated to supervisors",
    NotificationKind.SAFETY_REVIEW_ALERT: "Staff on duty alerted: possible crisis",
    NotificationKind.SMS_OPT_OUT: "The patron's number opted out of texts (STOP): refdesk "
    "sends it no more texts until it texts START, YES or INICIO",
    NotificationKind.SMS_OPT_IN: "The patron's number opted back in to texts (START)",
}
CONSENT = (NotificationKind.SMS_OPT_OUT.value, NotificationKind.SMS_OPT_IN.value)

AUTOMATED_LABEL: dict[NotificationKind, str] = {
    NotificationKind.SURVEY: "Survey",
    NotificationKind.HANDOFF: "Hand-off",
    NotificationKind.CRISIS_RESOURCES: "Crisis resources",
    NotificationKind.AFTER_HOURS_ACK: "After-hours acknowledgement",
    NotificationKind.KEYWORD_REPLY: "Keyword reply",
}


BOUNCE_DELAYED = "bounce_delayed"
AUTOMATIC_LABEL: dict[str, str] = {
    Automatic.AUTO_REPLY.value: "Automatic reply",
    Automatic.BOUNCE.value: "Delivery failure report",
    BOUNCE_DELAYED: "Delivery delayed",
}
"""The kinds of an inbound line that a mail system sent, not a person, as the console names
them: an automatic reply, a report that an email failed, a report that it is delayed."""
AUTOMATIC_OF_KIND: dict[str, Automatic] = {
    Automatic.AUTO_REPLY.value: Automatic.AUTO_REPLY,
    Automatic.BOUNCE.value: Automatic.BOUNCE,
    BOUNCE_DELAYED: Automatic.BOUNCE,
}
"""Each of those kinds as the event said it (`InteractionReceived.automatic`)."""
AUTOMATIC_KINDS = frozenset(AUTOMATIC_OF_KIND)


def automatic_kind(data: InteractionReceived) -> str:
    """The line kind of mail a mail system sent (`AUTOMATIC_LABEL`)."""
    assert data.automatic is not None
    if data.automatic is Automatic.BOUNCE and data.bounce and data.bounce.action == "delayed":
        return BOUNCE_DELAYED
    return data.automatic.value


def sent_files(names: Iterable[str]) -> str:
    """What a message of files alone shows in the queue: "Sent photo 1.jpg, photo 2.jpg"."""
    return "Sent " + ", ".join(names)


def preview_of(text: str) -> str:
    """The start of a message on one line, for the queue (stacks of combining marks cut down:
    `without_mark_stacks`)."""
    flat = " ".join(without_mark_stacks(text).split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1].rstrip() + "…"


class _Unit:
    """A unit of work's transcript lines and live-feed rows, as plain rows: lines are read in
    one query per batch and written with one INSERT and one UPDATE per set of changed columns
    when the unit commits (or when a batch writes them itself); the ORM's per-object unit of
    work cost more than the rest of an event's projection."""

    def __init__(self) -> None:
        self.lines: dict[str, dict[str, Any] | None] = {}  # id -> the line as it stands now
        self.new: set[str] = set()
        self.changed: dict[str, set[str]] = {}  # stored line -> the columns written since
        self.feed: dict[tuple[str, str | None, bool, str | None, bool], dict[str, Any]] = {}


_TICKET_TAG = re.compile(r"\s*\[\s*refdesk\s*#[^\]]*\]", re.IGNORECASE)
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|rv|fwd?|fw)\s*:", re.IGNORECASE)


def conversation_subject(subject: str | None) -> str | None:
    """An email's subject as the queue names the conversation: without refdesk's ticket tag
    (staff read it as a raw id, and a reply would carry it twice)."""
    if not subject:
        return None
    return _TICKET_TAG.sub("", subject).strip() or None


_UNIT = "refdesk.transcript_unit"
_FED = "refdesk.desk_changes"
_LINES = cast(Table, TranscriptEntry.__table__)
_FEED = cast(Table, DeskChange.__table__)
_LINE_COLUMNS = tuple(column.key for column in _LINES.columns)
_INSERT_LINES = insert(_LINES)
_INSERT_FEED = insert(_FEED)


def _unit(session: AsyncSession | Session) -> _Unit:
    unit: _Unit = session.info.setdefault(_UNIT, _Unit())
    return unit


async def preload(session: AsyncSession, entry_ids: Iterable[str | None]) -> None:
    """Read the lines with these ids (and which do not exist yet) in one query."""
    unit = _unit(session)
    wanted = {key for key in entry_ids if key is not None and key not in unit.lines}
    if not wanted:
        return
    found = {
        row["id"]: dict(row)
        for row in (await session.execute(select(_LINES).where(_LINES.c.id.in_(wanted)))).mappings()
    }
    for key in wanted:
        unit.lines[key] = found.get(key)


def known(session: AsyncSession) -> Iterator[Mapping[str, Any]]:
    """The lines this unit of work has read or written, as they stand now."""
    return (row for row in _unit(session).lines.values() if row is not None)


async def care_alert_refused(session: AsyncSession, conversation_id: str) -> bool:
    """Whether the conversation's latest CARE Team alert was refused for good or bounced, as
    this unit of work sees its lines (its own writes included). Read when a crisis decision
    reaches a conversation: the alert's outcome may have been applied before the conversation
    existed (events of several topics, in any order), when no row could carry the flag."""
    stored = await session.execute(
        select(_LINES).where(
            _LINES.c.conversation_id == conversation_id, _LINES.c.kind == CARE_ALERT_KIND
        )
    )
    unit = _unit(session)
    alerts: dict[str, Mapping[str, Any]] = {
        row["id"]: dict(row) for row in stored.mappings() if row["id"] not in unit.lines
    }
    alerts.update(
        (row["id"], row)
        for row in known(session)
        if row["conversation_id"] == conversation_id and row["kind"] == CARE_ALERT_KIND
    )
    if not alerts:
        return False
    latest = max(alerts.values(), key=lambda row: row["at"])
    return latest["delivery_state"] in (DeliveryState.FAILED.value, UNDELIVERED)


async def line(session: AsyncSession, entry_id: str) -> Mapping[str, Any] | None:
    """A transcript line as this unit of work sees it (its own writes included)."""
    unit = _unit(session)
    if entry_id not in unit.lines:
        await preload(session, [entry_id])
    return unit.lines[entry_id]


async def upsert(session: AsyncSession, entry_id: str, **values: Any) -> None:
    """Create a line or update the one with this id (events may arrive in any order); a None
    value leaves an existing line's column as it is."""
    unit = _unit(session)
    row = await line(session, entry_id)
    if row is None:
        row = dict.fromkeys(_LINE_COLUMNS)
        row.update(values, id=entry_id)
        row["attachments"] = row["attachments"] or []
        unit.lines[entry_id] = row
        unit.new.add(entry_id)
        return
    assert isinstance(row, dict)
    for key, value in values.items():
        if value is not None and row[key] != value:
            row[key] = value
            if entry_id not in unit.new:
                unit.changed.setdefault(entry_id, set()).add(key)


async def report_delivery(
    session: AsyncSession, entry_id: str, state: str, reason: str | None, at: datetime
) -> None:
    """What a carrier or a mail system reported about a message that went out, on its line
    (`sms_reports`, `bounces`), and the consoles told; a message the notifier could not send
    stays "failed", and a report that changes nothing tells nobody."""
    entry = await line(session, entry_id)
    if entry is None or entry["delivery_state"] not in WENT_OUT:
        return
    if (entry["delivery_state"], entry["delivery_reason"]) == (state, reason):
        return
    await rewrite(session, entry_id, delivery_state=state, delivery_reason=reason)
    conv = await rows.get(session, ConversationRow, entry["conversation_id"])
    if conv is not None and state == UNDELIVERED and entry["kind"] == STAFF_REPLY_KIND:
        _answered_nobody(conv, replied_at=entry["at"])
        _not_delivered(conv, entry_id, replied_at=entry["at"])
    if conv is not None and state == UNDELIVERED and entry["kind"] == CARE_ALERT_KIND:
        conv.care_alert_failed = True  # the CARE Team's address bounced it
    changed(session, conv, "delivery", at)


LANGUAGE_LETTERS = 15
"""Letters a follow-up needs before its language becomes the conversation's: "ok", "HELP" or
"gracias" read as a language of their own had turned a Spanish conversation's survey, its
supervisors' email and its screen-reader language English (and "ALTO" an English one
Spanish)."""


async def _says_its_language(session: AsyncSession, data: RoutingDecided, kept: bool) -> bool:
    """Whether a decision's language should become the conversation's: a first decision (or a
    re-routing) always; a follow-up only when its message is long enough to say it, never a
    keyword refdesk answered."""
    if answered_keyword(data):
        return False
    if not kept:
        return True
    message = await line(session, data.interaction_id)
    text = str((message or {}).get("text") or "")
    return sum(c.isalpha() for c in text) >= LANGUAGE_LETTERS


async def rewrite(session: AsyncSession, entry_id: str, **values: Any) -> None:
    """Set these columns of an existing line, a None value included (`upsert` keeps a column
    it is given None for)."""
    unit = _unit(session)
    row = await line(session, entry_id)
    assert isinstance(row, dict), entry_id
    for key, value in values.items():
        if row[key] != value:
            row[key] = value
            if entry_id not in unit.new:
                unit.changed.setdefault(entry_id, set()).add(key)


async def drop_lines(session: AsyncSession, conversation_id: str, *, until: datetime) -> None:
    """Delete a conversation's lines up to `until`, stored and this unit's own alike (an
    erasure: the lines an earlier event of the same batch made must not be written after)."""
    unit = _unit(session)
    for key, row in list(unit.lines.items()):
        if row is not None and row["conversation_id"] == conversation_id and row["at"] <= until:
            unit.lines[key] = None
            unit.new.discard(key)
            unit.changed.pop(key, None)
    await session.execute(
        delete(_LINES).where(_LINES.c.conversation_id == conversation_id, _LINES.c.at <= until)
    )


def write(session: Session) -> None:
    """Write the unit's new and changed lines and its live-feed rows (synchronous session:
    `await session.run_sync(write)` from async code; commits do it themselves)."""
    unit: _Unit | None = session.info.get(_UNIT)
    if unit is None:
        return
    if unit.new:
        session.execute(_INSERT_LINES, [_stored(unit, key) for key in sorted(unit.new)])
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for key, columns in unit.changed.items():
        row = _stored(unit, key)
        names = tuple(sorted(columns))
        by_columns.setdefault(names, []).append(
            {"key": key, **{f"v_{name}": row[name] for name in names}}
        )
    for names, params in by_columns.items():
        session.execute(rows.update_by_key(_LINES, names), params)
    if unit.feed:
        session.execute(_INSERT_FEED, list(unit.feed.values()))
        session.info[_FED] = True
    unit.new.clear()
    unit.changed.clear()
    unit.feed.clear()


def _stored(unit: _Unit, key: str) -> dict[str, Any]:
    row = unit.lines[key]
    assert row is not None, key
    return row


rows.written_at_commit(write, _UNIT)


def nudge_after_commit(sync: sessionmaker[Session], nudge: Callable[[], None]) -> None:
    """Call `nudge` after each commit, by a session of `sync`, that wrote live-feed rows
    (the consumer's batches and the staff actions alike)."""

    def committed(session: Session) -> None:
        if session.info.pop(_FED, None):
            nudge()

    event.listen(sync, "after_commit", committed)
    event.listen(sync, "after_rollback", lambda session: session.info.pop(_FED, None))


def changed(session: AsyncSession, conv: AnyConversation | None, what: str, at: datetime) -> None:
    """Tell every replica's live feed that this conversation changed.

    Within one unit of work (a poll batch) a conversation's changes are one row per department,
    crisis flag and librarian: a console refetches the conversation whatever changed, and a
    move to another department, a new crisis or a new librarian still reaches those who see it
    only that way.
    """
    if conv is None:
        return
    crisis = bool(conv.crisis or conv.safety_review)
    desk = desk_sees(conv)
    feed = _unit(session).feed
    key = (conv.conversation_id, conv.department, crisis, conv.assignee, desk)
    row = feed.get(key)
    if row is not None:
        row["what"], row["at"] = what, max(row["at"], at)
        return
    feed[key] = {
        "conversation_id": conv.conversation_id,
        "department": conv.department,
        "crisis": crisis,
        "what": what,
        "at": at,
        "assignee": conv.assignee,
        "desk": desk,
    }


async def on_interaction(
    session: AsyncSession,
    conv: AnyConversation,
    data: InteractionReceived,
    *,
    after_keyword: bool = False,
) -> None:
    """The patron's message, as received (mail a mail system sent: `on_automatic`).
    `after_keyword`: the latest message before it was a keyword refdesk answered, so what
    waited was only that."""
    if data.automatic is not None:
        await on_automatic(session, conv, data)
        return
    contact = data.patron.contact
    another = bool(contact and conv.patron_contact and contact != conv.patron_contact)
    author = f"{ANOTHER_SENDER}{contact}"[:64] if another else PATRON
    await _inbound(session, data, author=author, kind="message")
    unanswered = conv.answered_at is None or data.received_at > conv.answered_at
    keyword_only = after_keyword and conv.waiting_since == conv.last_patron_at
    earliest = conv.waiting_since is None or data.received_at < conv.waiting_since
    if unanswered and (keyword_only or earliest):
        conv.waiting_since = data.received_at
    if not another and (conv.last_patron_at is None or data.received_at >= conv.last_patron_at):
        # the queue's row says what the patron last wrote (another sender's email is a line
        # of the transcript, marked so, but never the row's preview or subject)
        conv.last_patron_at = data.received_at
        if data.text.strip():
            conv.preview = preview_of(data.text)
        elif data.attachments:  # a photo with no words: the queue says what came
            conv.preview = preview_of(sent_files(a.name for a in data.attachments))
        subject = conversation_subject(data.subject)
        if subject and (conv.subject is None or not _REPLY_SUBJECT.match(subject)):
            conv.subject = subject[:300]
    if data.patron.name and not another:  # another sender never renames the patron
        conv.patron_name = data.patron.name[:200]
    conv.blocked = conv.blocked or data.blocked
    changed(session, conv, "message", data.received_at)


async def on_interaction_line(
    session: AsyncSession, conv: AnyConversation, data: InteractionReceived
) -> None:
    """The patron's message as a line of the transcript only: nothing the queue's row says of
    the patron changes (a blocked sender's message, `handlers._from_blocked`)."""
    await _inbound(session, data, author=PATRON, kind="message")
    changed(session, conv, "message", data.received_at)


async def on_automatic(
    session: AsyncSession, conv: AnyConversation, data: InteractionReceived
) -> None:
    """Mail a mail system sent, as received: a line staff see, but not the patron's message,
    so the queue's preview, subject, patron name and the time the patron last wrote stay as
    the patron left them."""
    await _inbound(session, data, author=MAIL_SYSTEM, kind=automatic_kind(data))
    changed(session, conv, "automatic", data.received_at)


async def _inbound(
    session: AsyncSession, data: InteractionReceived, *, author: str, kind: str
) -> None:
    """The line of an email, text or chat message that came in, as received."""
    await upsert(
        session,
        data.interaction_id,
        conversation_id=data.conversation_id,
        direction="in",
        at=data.received_at,
        author=author,
        channel=data.channel.value,
        kind=kind,
        text=data.text,
        subject=data.subject,
        message_id=data.provider_message_id,
        attachments=[a.model_dump() for a in data.attachments],
        seq=data.sequence,
    )


FOLLOW_UP_FLAGGED = "Follow-up flagged for safety review — learned safety net"
"""A follow-up the learned net flagged, in a conversation it left where it was."""


def _department_phrase(decision: RoutingDecided) -> str:
    rules = ", ".join(hit.rule_id for hit in decision.rules)
    if decision.decided_by != "router":
        return f"Transferred to {decision.department} by {decision.decided_by}"
    action = decision.action.value.replace("_", " ")
    text = f"Routed to {decision.department} ({action})"
    if rules:
        text += f" by rule {rules}"
    if decision.net == "model":
        text += " — learned safety net"
    if decision.safety_review:
        text += " — flagged for safety review"
    return text


async def _next_inbound(
    session: AsyncSession, conversation_id: str, after: datetime
) -> datetime | None:
    """When the patron's first message after `after` came, if one has."""
    stored = await session.execute(
        select(func.min(_LINES.c.at)).where(
            _LINES.c.conversation_id == conversation_id,
            _LINES.c.direction == "in",
            _LINES.c.at > after,
        )
    )
    times = [at for at in (stored.scalar(),) if at is not None]
    times += [
        row["at"]
        for row in known(session)
        if row["conversation_id"] == conversation_id
        and row["direction"] == "in"
        and row["at"] > after
    ]
    return min(times, default=None)


async def _keyword_answered(session: AsyncSession, conv: AnyConversation, interaction: str) -> None:
    """A text of one keyword refdesk or Twilio answered (STOP, HELP, HOURS): nobody waits on
    it, whichever of its message and its decision, and of the messages around it, came first."""
    latest_answered = (
        conv.keyword_answered is not None and conv.keyword_answered == conv.last_interaction_id
    )
    entry = await line(session, interaction)
    if entry is None:  # decided before its message came
        if (
            interaction != conv.last_interaction_id
            and latest_answered
            and conv.waiting_since is not None
            and conv.waiting_since == conv.last_patron_at
        ):
            # after a keyword that was all that waited (STOP, then START): nothing waits; the
            # message, when it comes, is answered too
            conv.waiting_since = None
        conv.keyword_answered = interaction
        return
    if conv.waiting_since is not None and entry["direction"] == "in":
        if entry["at"] == conv.waiting_since:
            # the oldest message waiting is this keyword: what waits is what came after it
            # (two keywords texted together, both messages before either decision, had left
            # the conversation waiting)
            conv.waiting_since = await _next_inbound(session, conv.conversation_id, entry["at"])
    if not (latest_answered and interaction != conv.last_interaction_id):
        # never an older keyword over the latest one (decisions applied out of order)
        conv.keyword_answered = interaction


async def on_routing(
    session: AsyncSession, conv: AnyConversation, data: RoutingDecided, *, kept: bool = False
) -> None:
    """A routing decision or staff transfer, as a timeline line. A follow-up that left the
    conversation where it was (`kept`) changes nothing a line would say, unless it flagged the
    message for safety review."""
    conv.routed = True
    if answered_keyword(data):
        await _keyword_answered(session, conv, data.interaction_id)
    if not kept:
        conv.action = data.action.value
    if data.lang and data.lang != conv.lang and await _says_its_language(session, data, kept):
        conv.lang = data.lang
    if data.safety_review and data.action is not Action.ESCALATE_CRISIS:
        conv.safety_review = True
    if data.risk_score is not None:
        conv.risk_score = max(conv.risk_score or 0.0, data.risk_score)
    if kept and not data.safety_review:
        changed(session, conv, "routed", data.decided_at)
        return
    await upsert(
        session,
        f"decision:{data.decision_id}",
        conversation_id=data.conversation_id,
        direction="event",
        at=data.decided_at,
        author=data.decided_by,
        kind="routed" if data.decided_by == "router" else "transferred",
        text=FOLLOW_UP_FLAGGED if kept else _department_phrase(data),
    )
    changed(session, conv, "routed", data.decided_at)


def _answered(conv: AnyConversation, at: datetime) -> None:
    """A staff reply at `at`: the patron's messages before it are answered."""
    if conv.answered_at is None or at > conv.answered_at:
        conv.answered_at = at
    if conv.waiting_since is not None and conv.waiting_since <= at:
        # a message the patron wrote after the reply (applied first) still waits
        later = conv.last_patron_at is not None and conv.last_patron_at > at
        conv.waiting_since = conv.last_patron_at if later else None
    if conv.waiting_since is None:
        conv.unsent_reply = None


async def on_notification(
    session: AsyncSession, conv: AnyConversation | None, data: NotificationRequested
) -> None:
    """A message refdesk was asked to send: queued until the notifier reports."""
    if data.kind is NotificationKind.STAFF_REPLY and conv is not None:
        known_line = await line(session, data.idempotency_key)
        failed = (
            known_line is not None and known_line["delivery_state"] == DeliveryState.FAILED.value
        )
        if not failed:  # a failure reported first (a STOP'd number) answered nobody
            _answered(conv, data.requested_at)
            if conv.failed_reply != data.idempotency_key:
                conv.failed_reply = None  # someone replied again
    if data.kind in PATRON_FACING:
        text = data.context.get("text") if data.kind is NotificationKind.STAFF_REPLY else None
        author = str(data.context.get("staff_id") or REFDESK)
        await upsert(
            session,
            data.idempotency_key,
            conversation_id=data.conversation_id,
            direction="out",
            at=data.requested_at,
            author=author,
            channel=data.channel.value,
            kind=data.kind.value,
            text=text,
            subject=data.context.get("subject") if text else None,
        )
        entry = await line(session, data.idempotency_key)
        if entry is not None and entry["delivery_state"] is None:
            # an outcome that arrived first is kept
            await upsert(session, data.idempotency_key, delivery_state=DeliveryState.QUEUED.value)
    else:
        if data.context.get("if_opted_out") and not await _opted_out(session, data):
            return  # a "yes" in answer to a librarian: the number had not opted out here
        await upsert(
            session,
            data.idempotency_key,
            conversation_id=data.conversation_id,
            direction="event",
            at=data.requested_at,
            author=REFDESK,
            kind=data.kind.value,
            text=_staff_facing(data),
        )
    changed(session, conv, "outbound", data.requested_at)


def _staff_facing(data: NotificationRequested) -> str:
    """The line staff read for a message to them or a change they should know of."""
    if data.kind is NotificationKind.SMS_OPT_IN and data.context.get("keyword"):
        return f"The patron's number opted back in to texts ({data.context['keyword']})"
    return STAFF_FACING_TEXT.get(data.kind, data.kind.value)


async def _opted_out(session: AsyncSession, data: NotificationRequested) -> bool:
    """Whether the number's latest opt-out or opt-in line, in any of its conversations, as
    this unit of work sees it (the batch's own lines too), is an opt-out: YES after STOP opts
    the number back in, also in a conversation the STOP was not in."""
    ids = await _conversations_of(session, data.recipient) | {data.conversation_id}
    return await number_opted_out(session, ids)


async def _conversations_of(session: AsyncSession, contact: str | None) -> set[str]:
    if not contact:
        return set()
    found = await session.execute(
        select(Conversation.conversation_id).where(Conversation.patron_contact == contact)
    )
    return set(found.scalars())


async def number_opted_out(session: AsyncSession, conversation_ids: set[str]) -> bool:
    """Whether the latest opt-out or opt-in line of these conversations (a number's) is an
    opt-out: the notifier sends that number nothing until START, YES or INICIO."""
    stored = await session.execute(
        select(_LINES.c.id, _LINES.c.kind, _LINES.c.at).where(
            _LINES.c.conversation_id.in_(sorted(conversation_ids)), _LINES.c.kind.in_(CONSENT)
        )
    )
    lines = {row.id: (row.at, row.kind) for row in stored}
    for row in known(session):
        if row["conversation_id"] in conversation_ids and row["kind"] in CONSENT:
            lines[row["id"]] = (row["at"], row["kind"])
    if not lines:
        return False
    return bool(max(lines.values())[1] == NotificationKind.SMS_OPT_OUT.value)


async def contact_opted_out(session: AsyncSession, contact: str | None) -> bool:
    """Whether this number's latest change, in any of its conversations, is an opt-out."""
    ids = await _conversations_of(session, contact)
    return bool(ids) and await number_opted_out(session, ids)


CHAT_OVER = "the chat had ended, so the patron did not see it"
CHAT_GAVE_UP = "the chat platform kept failing and refdesk stopped trying"


def chat_refusal(short: str | None) -> str | None:
    """Why the notifier could not post a message into a chat, as the console says it (its
    short reasons: "chat ended", "rejected 400", "retries exhausted 503"); any other reason
    as it is."""
    if short in ("chat ended", "rejected 404", "rejected 410"):
        return CHAT_OVER
    if short and short.startswith("rejected "):
        return f"the chat platform refused it ({short.removeprefix('rejected ')})"
    if short and short.startswith("retries exhausted"):
        return CHAT_GAVE_UP
    return short


async def on_delivered(
    session: AsyncSession, conv: AnyConversation | None, data: NotificationDelivered
) -> None:
    """The notifier's outcome: sent (with the text as delivered) or failed (with why)."""
    direction = "out" if data.kind in PATRON_FACING else "event"
    entry = await line(session, data.idempotency_key)
    if entry is not None and entry["delivery_state"] in WENT_OUT:
        return
    values: dict[str, Any] = {
        "conversation_id": data.conversation_id,
        "direction": direction,
        "author": entry["author"] if entry is not None else REFDESK,
        "channel": data.channel.value,
        "kind": data.kind.value,
        "delivery_state": data.state.value,
        "delivery_reason": chat_refusal(data.reason)
        if data.channel is Channel.CHAT
        else data.reason,
        "message_id": data.message_id,
        "segments": data.segments,
    }
    if direction == "out":
        values["text"] = data.text
        values["subject"] = data.subject
    if entry is None:
        values["at"] = data.at
    await upsert(session, data.idempotency_key, **values)
    replied_at = entry["at"] if entry is not None else data.at
    if conv is not None and data.kind is NotificationKind.CRISIS_ALERT:
        # refused for good: nobody outside the desk knows (a later success clears it)
        conv.care_alert_failed = data.state is DeliveryState.FAILED
        if conv.care_alert_unsent == data.idempotency_key:
            conv.care_alert_unsent = None  # flagged late by the sweep: now reported on
    if conv is not None and data.kind is NotificationKind.STAFF_REPLY:
        if data.state is DeliveryState.FAILED:
            _answered_nobody(conv, replied_at=replied_at)
            _not_delivered(conv, data.idempotency_key, replied_at=replied_at)
        if conv.unsent_reply == data.idempotency_key:
            # the reply the sweep had found unsent (`sweep.reopen_unsent`) went out or failed
            conv.unsent_reply = None
            if data.state is not DeliveryState.FAILED:
                _answered(conv, replied_at)
    changed(session, conv, "delivery", data.at)


def _not_delivered(conv: AnyConversation, line_id: str, *, replied_at: datetime) -> None:
    """Flag the conversation with a reply that never reached the patron, if it is the latest
    one (an older reply failing after a newer one went out says nothing of the newer)."""
    if conv.answered_at is None or replied_at >= conv.answered_at:
        conv.failed_reply = line_id


def _answered_nobody(conv: AnyConversation, *, replied_at: datetime) -> None:
    """A staff reply that never reached the patron (the notifier gave up on it, the carrier
    did not deliver it, the patron's mail system bounced it) answered nobody: if it was the
    latest answer, the patron waits again (from their latest message: the queue read
    "Answered" beside "Not delivered: the patron replied STOP")."""
    if conv.waiting_since is not None:
        return
    latest = conv.answered_at is None or replied_at >= conv.answered_at
    if latest and conv.last_patron_at is not None and conv.last_patron_at <= replied_at:
        conv.waiting_since = conv.last_patron_at


async def on_note(
    session: AsyncSession, conv: AnyConversation | None, data: StaffNoteAdded
) -> None:
    """An internal note."""
    await upsert(
        session,
        f"note:{data.note_id}",
        conversation_id=data.conversation_id,
        direction="note",
        at=data.at,
        author=data.staff_id,
        kind="note",
        text=data.text,
    )
    changed(session, conv, "note", data.at)


async def timeline(
    session: AsyncSession,
    conv: AnyConversation,
    *,
    key: str,
    at: datetime,
    author: str,
    kind: str,
    text: str,
) -> None:
    """A timeline line (claimed, acknowledged, closed, converted)."""
    await upsert(
        session,
        key,
        conversation_id=conv.conversation_id,
        direction="event",
        at=at,
        author=author,
        kind=kind,
        text=text,
    )
    changed(session, conv, kind, at)


async def on_claimed(
    session: AsyncSession, conv: AnyConversation, data: ConversationClaimed
) -> None:
    """Claimed by a staff member."""
    await timeline(
        session,
        conv,
        key=f"claimed:{data.staff_id}:{data.at.isoformat()}",
        at=data.at,
        author=data.staff_id,
        kind="claimed",
        text=f"Claimed by {data.staff_id}",
    )


async def on_released(
    session: AsyncSession, conv: AnyConversation, data: ConversationReleased
) -> None:
    """Given back to the queue."""
    await timeline(
        session,
        conv,
        key=f"released:{data.conversation_id}:{data.at.isoformat()}",
        at=data.at,
        author=data.staff_id,
        kind="released",
        text=f"Given back to the queue by {data.staff_id}",
    )


async def on_acknowledged(
    session: AsyncSession, conv: AnyConversation, data: CrisisAcknowledged
) -> None:
    """Crisis acknowledged."""
    await timeline(
        session,
        conv,
        key=f"acknowledged:{data.conversation_id}",
        at=data.at,
        author=data.staff_id,
        kind="acknowledged",
        text=f"Crisis acknowledged by {data.staff_id}",
    )


async def on_care_report(
    session: AsyncSession, conv: AnyConversation, data: CareReportFiled
) -> None:
    """The CARE Team's incident report filed: a line per record (one taken back and made
    again keeps both lines; a single key had moved the first one to the second's time)."""
    await timeline(
        session,
        conv,
        key=f"care_report:{data.conversation_id}:{data.at.isoformat()}",
        at=data.at,
        author=data.staff_id,
        kind="care_report",
        text=f"CARE Team incident report filed by {data.staff_id}",
    )


async def on_care_report_withdrawn(
    session: AsyncSession, conv: AnyConversation, data: CareReportWithdrawn
) -> None:
    """The record of a CARE Team report taken back (one line each time)."""
    await timeline(
        session,
        conv,
        key=f"care_report_withdrawn:{data.conversation_id}:{data.at.isoformat()}",
        at=data.at,
        author=data.staff_id,
        kind="care_report_withdrawn",
        # ends with " by <id>": the page names the staff member (`reading.event_text`)
        # whose record it was is in the aside; the line says only that a record went (it had
        # said none was filed while a colleague's still stood: an outside review)
        text=f"A CARE Team report record taken back by {data.staff_id}",
    )


async def on_contact_blocked(
    session: AsyncSession, conv: AnyConversation, data: ContactBlocked
) -> None:
    """The patron blocked from this conversation: one line for the action, however many of
    its contacts it blocked (the number and, after a conversion, the address)."""
    await timeline(
        session,
        conv,
        key=f"blocked:{conv.conversation_id}:{data.at.isoformat()}",
        at=data.at,
        author=data.staff_id,
        kind="blocked",
        text=f"Sender blocked (“{data.reason or 'no reason given'}”) by {data.staff_id}",
    )


async def on_contact_unblocked(
    session: AsyncSession, conv: AnyConversation, data: ContactUnblocked
) -> None:
    """The patron of this conversation unblocked (one line for the action)."""
    await timeline(
        session,
        conv,
        key=f"unblocked:{conv.conversation_id}:{data.at.isoformat()}",
        at=data.at,
        author=data.staff_id,
        kind="unblocked",
        text=f"Sender unblocked by {data.staff_id}",
    )


async def on_closed(
    session: AsyncSession,
    conv: AnyConversation,
    data: ConversationClosed,
    *,
    kept_open: bool = False,
) -> None:
    """Closed by staff or ended by the platform (`kept_open`: an unacknowledged crisis, which
    stays open)."""
    by = data.closed_by or "the platform"
    kept = "; kept open until the crisis is acknowledged" if kept_open else ""
    await timeline(
        session,
        conv,
        key=f"closed:{data.conversation_id}:{data.closed_at.isoformat()}",
        at=data.closed_at,
        author=data.closed_by or REFDESK,
        kind="closed",
        text=f"Closed by {by}{kept}",
    )


async def on_transferred(
    session: AsyncSession,
    conv: AnyConversation,
    data: ConversationTransferred,
    *,
    kept: bool = False,
) -> None:
    """The platform moved the conversation (`kept`: an unacknowledged crisis, which stays with
    the CARE Team)."""
    await timeline(
        session,
        conv,
        key=f"platform-transfer:{data.conversation_id}:{data.transferred_at.isoformat()}",
        at=data.transferred_at,
        author=data.by or REFDESK,
        kind="transferred",
        text=f"Transferred to {data.department} on the chat platform"
        + ("; kept with the CARE Team until the crisis is acknowledged" if kept else ""),
    )


async def on_converted(
    session: AsyncSession, conv: AnyConversation, data: ConversationConverted
) -> None:
    """An SMS thread became an email ticket."""
    await timeline(
        session,
        conv,
        key=f"converted:{data.conversation_id}",
        at=data.at,
        author=data.staff_id,
        kind="converted",
        text=f"Converted from SMS to an email ticket by {data.staff_id}",
    )
