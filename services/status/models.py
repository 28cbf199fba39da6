"""The status service's tables: staff, tokens, presence, status history, the desk queue,
transcripts, what the SMS provider reported about each text and what mail systems reported
about each email (bounces), the transcript access log and the live change feed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    false,
    literal,
    or_,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.status import rows
from shared.db import UTCDateTime, processed_table


class Base(DeclarativeBase):
    pass


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    campus: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16), default="staff")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffToken(Base):
    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64), default="api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """The latest request or sign-in made with it, to the minute (token_use.py); None: not
    used since issued (or since refdesk recorded it)."""
    issue_key: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    """The one-time key of the staff page's form that issued it: the same form again issues
    nothing new."""


class Presence(Base):
    """Current status per staff member (one row each)."""

    __tablename__ = "presence"

    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(64))
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shift_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StatusChange(Base):
    __tablename__ = "status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(500))


class Conversation(Base):
    """One chat, SMS thread or email ticket on the desk queue."""

    __tablename__ = "conversations"
    # The queue's own index orders by an expression (migration 0004, ix_conversations_queue)
    # and lives in the migrations only.
    __table_args__ = (
        Index("ix_conversations_contact", "patron_contact"),
        Index("ix_conversations_closed", "state", "closed_at"),
    )

    conversation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(64), index=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    overnight: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assignee: Mapped[str | None] = mapped_column(String(64), index=True)
    assignee_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the assignee last changed: an older claim event never undoes a later transfer."""
    crisis: Mapped[bool] = mapped_column(Boolean, default=False)
    crisis_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    reescalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reescalations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Re-escalation rounds sent since the crisis was (last) flagged: the next is due a longer
    while after the last (`sweep.reminder_due`); back to 0 when it must be acknowledged anew."""
    care_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    care_report_by: Mapped[str | None] = mapped_column(String(64))
    """Who recorded filing the CARE Team's incident report on this patron, and when (the first
    record stands; `CareReportFiled`)."""
    crisis_kinds: Mapped[str | None] = mapped_column(String(160))
    """What kind of crisis the router saw, comma-separated (`shared.events.CrisisKind`, from its
    crisis rules' ids: never the words), each once, in the order first seen: the re-escalation
    tells the supervisors what the CARE Team's alert told them."""
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    patron_contact: Mapped[str | None] = mapped_column(String(320))
    """Student data: kept only so the close event can carry the survey's recipient."""
    converted_from: Mapped[str | None] = mapped_column(String(16))
    texted_from: Mapped[str | None] = mapped_column(String(32), index=True)
    """Student data: the number an SMS thread came from, kept when staff turned it into an
    email ticket, so the patron's number still finds it."""
    last_interaction_id: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(8), default="en")
    safety_review: Mapped[bool] = mapped_column(Boolean, default=False)
    risk_score: Mapped[float | None] = mapped_column(Float)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    routed: Mapped[bool] = mapped_column(Boolean, default=False)
    """A blocked contact's conversation shows on the desk only once the router routed it."""
    automatic_only: Mapped[bool] = mapped_column(Boolean, default=False)
    """Opened by mail a mail system sent (an automatic reply, a bounce) and no person has
    written since: shown on the desk only once the router routed it (a crisis)."""
    bounce_waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    """A bounce came before the notifier announced the email it reports on: announcements of
    this conversation's emails look for it (`bounces`; the others never query for one)."""
    unstaffed: Mapped[bool] = mapped_column(Boolean, default=False)
    """The router made it a ticket in its department because nobody there was Online: until
    someone claims it, the desk's own staff see it too (`policy.desk_sees`)."""
    action: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(300))
    """Student data: the email ticket's subject."""
    preview: Mapped[str | None] = mapped_column(String(200))
    """Student data: the start of the patron's latest message."""
    patron_name: Mapped[str | None] = mapped_column(String(200))
    """Student data: as the patron or platform gave it (the greeting macro's first name)."""
    last_patron_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When staff last replied to the patron (a reply asked of the notifier)."""
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """The patron's oldest message no staff reply has followed; None: answered."""
    unsent_reply: Mapped[str | None] = mapped_column(String(128))
    """The staff reply (its transcript line) that answered the patron but was still not sent
    `REPLY_OVERDUE` after it was written: the sweep put the patron back to waiting, and the
    reply going out answers them again (`sweep.reopen_unsent`)."""
    failed_reply: Mapped[str | None] = mapped_column(String(128))
    """The latest staff reply (its transcript line) if it never reached the patron: the notifier
    gave up on it, the carrier did not deliver it or the patron's mail system bounced it. The
    queue says "Reply not delivered" until someone replies again."""
    care_alert_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    """The CARE Team's alert email was refused for good: nobody outside the desk knows of the
    crisis, and the queue and the conversation say so (file the report by hand)."""
    care_alert_unsent: Mapped[str | None] = mapped_column(String(128))
    """The CARE Team's alert (its transcript line) still not sent `REPLY_OVERDUE` after it was
    asked for (the relay down: the notifier keeps trying for hours): the queue says "CARE Team
    alert not sent yet" until it goes out or fails (`sweep.flag_unsent_care_alerts`)."""
    keyword_answered: Mapped[str | None] = mapped_column(String(128))
    """The interaction id of the latest text the router decided was one keyword refdesk
    answered itself (STOP, HELP, HOURS): if it is the one message waiting, nobody need answer
    (`queue.row_view`). Set by the routing decision alone, so it holds in whichever order the
    message and its decision are applied."""
    bulk: Mapped[bool] = mapped_column(Boolean, default=False)
    sender_unverified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """An email of it failed the receiving mail system's sender checks: its From may be forged
    (the console says so where staff reply)."""
    """An email of it went to many (a list, a newsletter): no automatic answer goes to it."""
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_through: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """The received time of the latest patron message the close accounted for (a message
    received after it reopens the conversation, one on its way when the close was made too)."""
    read_scale: Mapped[int | None] = mapped_column(Integer)
    topic: Mapped[str | None] = mapped_column(String(32))
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When retention removed the transcript and the patron's contact details."""


@dataclass(slots=True, eq=False, kw_only=True)
class ConversationRow:
    """A row of `conversations` (the queue); the columns are documented on `Conversation`."""

    conversation_id: str
    channel: str
    department: str | None = None
    priority: str = "normal"
    overnight: bool = False
    state: str = "open"
    opened_at: datetime
    last_message_at: datetime
    closed_at: datetime | None = None
    assignee: str | None = None
    assignee_since: datetime | None = None
    crisis: bool = False
    crisis_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    reescalated_at: datetime | None = None
    reescalations: int = 0
    care_report_at: datetime | None = None
    care_report_by: str | None = None
    crisis_kinds: str | None = None
    first_response_at: datetime | None = None
    patron_contact: str | None = None
    converted_from: str | None = None
    texted_from: str | None = None
    last_interaction_id: str | None = None
    note: str | None = None
    lang: str = "en"
    safety_review: bool = False
    risk_score: float | None = None
    blocked: bool = False
    routed: bool = False
    automatic_only: bool = False
    bounce_waiting: bool = False
    unstaffed: bool = False
    action: str | None = None
    subject: str | None = None
    preview: str | None = None
    patron_name: str | None = None
    last_patron_at: datetime | None = None
    answered_at: datetime | None = None
    waiting_since: datetime | None = None
    unsent_reply: str | None = None
    failed_reply: str | None = None
    care_alert_failed: bool = False
    care_alert_unsent: str | None = None
    keyword_answered: str | None = None
    bulk: bool = False
    sender_unverified: bool = False
    closed_by: str | None = None
    closed_through: datetime | None = None
    read_scale: int | None = None
    topic: str | None = None
    purged_at: datetime | None = None


# read FOR UPDATE: a patron's message applied while a librarian closed the conversation (on
# another replica) had been decided on the row as read before the close and left it closed,
# the message unseen in no queue
rows.register(ConversationRow, Conversation.__table__, locked=True)

AnyConversation: TypeAlias = Conversation | ConversationRow
"""A conversation as a consumer batch (a plain row) or a staff action (the ORM object) has it."""


IS_OPEN = Conversation.state == literal("open", literal_execute=True)
CRISIS_UNANSWERED = (
    Conversation.crisis == true(),
    Conversation.acknowledged_at.is_(None),
)
"""A crisis nobody has acknowledged (re-escalated or not: reminders go on until someone does)."""
AWAITING_ACKNOWLEDGEMENT = and_(IS_OPEN, *CRISIS_UNANSWERED)
"""What the re-escalation sweep looks for every few seconds. Written with the value inline, so
that the sweep's query, which uses these very terms, is seen to match the partial index below
by SQLite and by a generic PostgreSQL plan alike."""

NEVER_SHOWN = and_(
    Conversation.routed == false(),
    or_(Conversation.blocked == true(), Conversation.automatic_only == true()),
)
"""A conversation the desk never sees (the complement of `queue.SHOWN`): a blocked sender's,
or one only mail systems wrote to, that no crisis net routed. Nobody closes it, so retention
counts from its last message, off the partial index below."""

# retention reads the few conversations nobody sees, not every conversation (migration 0007)
Index(
    "ix_conversations_never_shown",
    Conversation.last_message_at,
    sqlite_where=NEVER_SHOWN,
    postgresql_where=NEVER_SHOWN,
)

UNPURGED_CLOSED = and_(
    Conversation.state == literal("closed", literal_execute=True),
    Conversation.purged_at.is_(None),
)
"""Closed, its transcript not purged yet: what retention's sweep reads every 5 s (the purged
rows, every conversation of past years, are not in its index)."""

# retention reads the closed conversations not purged yet off this index: the sweep had read
# every purged one of past years each 5 s, 0.1-0.3 s at 400,000 (migration 0033)
Index(
    "ix_conversations_unpurged_closed",
    Conversation.closed_at,
    sqlite_where=UNPURGED_CLOSED,
    postgresql_where=UNPURGED_CLOSED,
)

# retention reads the open conversations silent past it off the end of this index, not every
# open conversation (migration 0023)
Index(
    "ix_conversations_open_last_message",
    Conversation.last_message_at,
    sqlite_where=IS_OPEN,
    postgresql_where=IS_OPEN,
)

# the sweep reads the few crises awaiting acknowledgement, not every open conversation
# (migration 0005)
Index(
    "ix_conversations_crisis_due",
    Conversation.crisis_at,
    sqlite_where=AWAITING_ACKNOWLEDGEMENT,
    postgresql_where=AWAITING_ACKNOWLEDGEMENT,
)


class TranscriptEntry(Base):
    """One line of a conversation's transcript: a patron message or mail a mail system sent
    (in; `kind` says which), a message sent to the patron (out), a staff note (note) or a
    timeline event (event). Student data."""

    __tablename__ = "transcript_entries"
    __table_args__ = (Index("ix_transcript_conversation_at", "conversation_id", "at"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    author: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(300))
    delivery_state: Mapped[str | None] = mapped_column(String(16))
    delivery_reason: Mapped[str | None] = mapped_column(String(200))
    segments: Mapped[int | None] = mapped_column(Integer)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    seq: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    """A chat platform's sequence of a patron message: orders a burst stamped to one second.
    64 bits (migration 0021; SQLite's INTEGER is 64-bit already)."""


TEXT_SENT = and_(
    TranscriptEntry.direction == literal("out", literal_execute=True),
    TranscriptEntry.channel == literal("sms", literal_execute=True),
)
"""The lines a provider's report can be about: texts refdesk sent. Written with the values
inline, so that the report's lookup, which uses these very terms, is seen to match the partial
index below by SQLite and by a generic PostgreSQL plan alike."""

# a provider's report about a text finds its line by the provider's id; only texts refdesk sent
# are indexed, so the other lines (every patron message, email and note) cost no index write
# (migration 0006)
Index(
    "ix_transcript_text_sent",
    TranscriptEntry.message_id,
    sqlite_where=TEXT_SENT,
    postgresql_where=TEXT_SENT,
)


REPLY_UNSENT = and_(
    TranscriptEntry.kind == literal("staff_reply", literal_execute=True),
    TranscriptEntry.delivery_state == literal("queued", literal_execute=True),
)
"""Staff replies the notifier has not reported on yet: a few at any moment, however long the
transcripts grow."""

# the sweep looks every few seconds for replies still unsent minutes after they were written
# (migration 0020)
Index(
    "ix_transcript_reply_unsent",
    TranscriptEntry.at,
    sqlite_where=REPLY_UNSENT,
    postgresql_where=REPLY_UNSENT,
)

CARE_ALERT_UNSENT = and_(
    TranscriptEntry.kind == literal("crisis_alert", literal_execute=True),
    TranscriptEntry.delivery_state.is_(None),
)
"""CARE Team alerts the notifier has not reported on yet: a few at any moment."""

# the sweep looks every few seconds for CARE Team alerts still not out minutes after they were
# asked for (migration 0024)
Index(
    "ix_transcript_care_alert_unsent",
    TranscriptEntry.at,
    sqlite_where=CARE_ALERT_UNSENT,
    postgresql_where=CARE_ALERT_UNSENT,
)

CARE_ALERT_LATE = Conversation.care_alert_unsent.is_not(None)
"""Conversations whose CARE Team alert is flagged as not sent yet."""

Index(
    "ix_conversations_care_alert_unsent",
    Conversation.care_alert_unsent,
    sqlite_where=CARE_ALERT_LATE,
    postgresql_where=CARE_ALERT_LATE,
)

REOPENED = Conversation.unsent_reply.is_not(None)
"""Conversations whose patron waits again because their reply has not gone out."""

Index(
    "ix_conversations_unsent_reply",
    Conversation.unsent_reply,
    sqlite_where=REOPENED,
    postgresql_where=REOPENED,
)


class SmsReport(Base):
    """The most final thing the SMS provider reported about one text refdesk sent (Twilio's
    status callbacks, by MessageSid), kept whether or not its transcript line is known yet.
    No student data: an id, a status word and an error code."""

    __tablename__ = "sms_reports"

    provider_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


@dataclass(slots=True, eq=False, kw_only=True)
class SmsReportRow:
    """A row of `sms_reports`, as the consumer's units of work keep it."""

    provider_id: str
    status: str
    error_code: int | None = None
    reported_at: datetime


rows.register(SmsReportRow, SmsReport.__table__)


class EmailBounce(Base):
    """The most final thing a mail system reported about one email refdesk sent (a bounce:
    failed, or delayed), by the email's conversation and Message-ID, kept whether or not its
    transcript line is known yet. No student data: ids, a word and a status code."""

    __tablename__ = "email_bounces"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """`bounces.key` of the conversation and the Message-ID."""
    conversation_id: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str] = mapped_column(String(300))
    """The email's Message-ID without angle brackets."""
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    """RFC 3463's enhanced status code, as 5.1.1."""
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


@dataclass(slots=True, eq=False, kw_only=True)
class EmailBounceRow:
    """A row of `email_bounces`, as the consumer's units of work keep it."""

    id: str
    conversation_id: str
    message_id: str
    action: str
    status: str | None = None
    reported_at: datetime


rows.register(EmailBounceRow, EmailBounce.__table__)


class BlockedContact(Base):
    """A patron's phone number or email address blocked at the desk: who blocked it, from which
    conversation, why, and who unblocked it (None: still blocked). Student data: the contact,
    and the reason in staff's words."""

    __tablename__ = "desk_blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact: Mapped[str] = mapped_column(String(320), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(255))
    blocked_by: Mapped[str] = mapped_column(String(64))
    blocked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    unblocked_by: Mapped[str | None] = mapped_column(String(64))
    unblocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CareReport(Base):
    """A staff member's record of filing the CARE Team's incident report on a conversation's
    patron, and its taking back (`care_reports.py`; ids and times, no student data)."""

    __tablename__ = "care_reports"
    __table_args__ = (
        Index(
            "ux_care_reports_standing",
            "conversation_id",
            "staff_id",
            unique=True,
            sqlite_where=text("withdrawn_at IS NULL"),
            postgresql_where=text("withdrawn_at IS NULL"),
        ),
    )

    conversation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by: Mapped[str | None] = mapped_column(String(64))


class TranscriptAccess(Base):
    """Who read which transcript, when (FERPA's record of disclosures)."""

    __tablename__ = "transcript_access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(String(64), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    detail: Mapped[str | None] = mapped_column(String(300))


class OutboxRecord(Base):
    """An event a staff action saved in the transaction of its change, until the broker
    acknowledged it (`resources.deliver`): with the broker away a reply, a transfer or a close
    is published by the periodic relay once it is back, never lost."""

    __tablename__ = "status_outbox"
    __table_args__ = (Index("ix_status_outbox_key", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(64))
    """The CloudEvent id, fixed when saved: a record published twice (two replicas' relays)
    is one event to every consumer."""
    type: Mapped[str] = mapped_column(String(255))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeskChange(Base):
    """The live feed: one row per change to a conversation, read by every replica's
    broadcaster (no patron data)."""

    __tablename__ = "desk_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(128))
    department: Mapped[str | None] = mapped_column(String(64))
    crisis: Mapped[bool] = mapped_column(Boolean, default=False)
    what: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    assignee: Mapped[str | None] = mapped_column(String(64))
    """The conversation's librarian (who sees it wherever it is)."""
    desk: Mapped[bool] = mapped_column(Boolean, default=False)
    """The desk's own staff see it too: a ticket nobody Online could take that nobody has
    claimed (`policy.desk_sees`)."""


PROCESSED = processed_table(Base.metadata, "status_processed_events")
