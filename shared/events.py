"""Wire contracts: CloudEvents 1.0 (structured JSON) envelopes and the data of every refdesk event.

These models carry no logic. Services translate provider payloads and events into
their own types at their edges.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from shared.text import Text

NAMESPACE = uuid.UUID("6f1c2a4e-5d7b-4f0e-9a61-3b8d2c7e9f10")
"""Namespace for ids derived deterministically from other ids (uuid5)."""

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
SEQUENCE_MAX = 2**63 - 1
"""The largest chat sequence number kept (a database's 64-bit integer): a platform numbering
messages by milliseconds fits; a larger one is refused where it arrives, not lost later."""
"""Every time an event carries lies in [EARLIEST, LATEST): a desk's messages are of this
century, and a year such as 9999 would overflow the first day added to it downstream."""


def within_range(value: datetime) -> datetime:
    """`value` if it is an instant of the years 2000 to 2099 (UTC); else ValueError."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the first instant Python has
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("a time outside the years 2000 to 2099")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(within_range)]
"""A time with its offset, within the years 2000 to 2099: every time an event carries."""


class Channel(StrEnum):
    CHAT = "chat"
    SMS = "sms"
    EMAIL = "email"


class PatronRole(StrEnum):
    STUDENT = "student"
    FACULTY = "faculty"
    UNKNOWN = "unknown"


class Action(StrEnum):
    ANSWER = "answer"
    TRANSFER = "transfer"
    EMAIL_CIRCULATION = "email_circulation"
    REFER_FACULTY = "refer_faculty"
    REFER_COUNSELING = "refer_counseling"
    ESCALATE_CRISIS = "escalate_crisis"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"


class StaffStatus(StrEnum):
    ONLINE = "Online"
    AWAY = "Away"
    OFFLINE = "Offline"


class _Data(BaseModel):
    """Every event's data. A field this version does not know is ignored when an event is
    read, as docs/subscribing.md asks of every consumer: an additive change (a new optional
    field) keeps its type, and during a rolling upgrade a service still on the older version
    reads what a newer one publishes instead of dead-lettering it. Code that builds an event
    with a field the model lacks is refused by mypy (`init_forbid_extra`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# ---- refdesk.interactions -------------------------------------------------------------


class Patron(_Data):
    contact: Text | None = Field(None, description="E.164 phone or lower-cased email; student data")
    name: Text | None = Field(None, description="as the patron or platform gave it; student data")
    role: PatronRole = PatronRole.UNKNOWN
    unverified: bool = Field(
        False,
        description="an email whose sender failed the receiving mail system's checks (DMARC, "
        "or SPF without DKIM): its From may be forged, so nothing is sent to it unasked",
    )


class Attachment(_Data):
    """A file that came with a patron's message: described, never stored by refdesk."""

    name: Text = Field(max_length=255)
    size: int | None = Field(
        None, ge=0, description="bytes; null when the provider does not say (a Twilio MMS item)"
    )
    content_type: str | None = None


class Automatic(StrEnum):
    """Mail a system sent rather than a person; recorded in its conversation, never answered."""

    AUTO_REPLY = "auto_reply"  # an out-of-office or other automatic answer (RFC 3834)
    BOUNCE = "bounce"  # a delivery status report (RFC 3464): an email could not be delivered


class Bounce(_Data):
    """What a delivery status report says about an email refdesk sent. The failed address and
    the remote server's words are left out: they are student data and may quote the message."""

    message_id: str | None = Field(
        None,
        max_length=255,
        description="the Message-ID (without angle brackets) of the email the report is about",
    )
    status: str | None = Field(
        None,
        pattern=r"^[245]\.[0-9]{1,3}\.[0-9]{1,3}$",
        description="the RFC 3463 enhanced status code, as 5.1.1",
    )
    action: Literal["failed", "delayed"] = Field(
        "failed", description="failed: given up for good; delayed: the mail system still tries"
    )


class InteractionReceived(_Data):
    """A patron's message reached the desk on one channel."""

    interaction_id: str
    conversation_id: str
    channel: Channel
    provider: str = Field(description="twilio, mailgun, mime, chat")
    provider_message_id: str
    patron: Patron
    text: Text = Field(description="the patron's new text, quoted history removed; student data")
    subject: Text | None = Field(None, description="an email's subject line; student data")
    received_at: Instant
    campus_hint: str | None = None
    department_hint: str | None = None
    sequence: int | None = Field(
        None,
        ge=0,
        le=SEQUENCE_MAX,
        description="sender-side sequence within the conversation (a 64-bit integer)",
    )
    attachments: list[Attachment] = Field(default_factory=list)
    blocked: bool = Field(
        False,
        description="the contact is on the blocklist: routed only if the crisis net matches",
    )
    automatic: Automatic | None = Field(
        None,
        description="sent by a mail system, not a person: recorded, routed only if the "
        "crisis net escalates it, and never answered",
    )
    bounce: Bounce | None = Field(None, description="for a bounce: the report's findings")
    bulk: bool = Field(
        False,
        description="email sent to many (Precedence: bulk, list or junk; List-Id or "
        "List-Unsubscribe), or a text from a short code or sender ID (a service's broadcast): "
        "routed and read like any message, but sent no automatic answer (RFC 3834, section 2: "
        "an answer may reach a whole list)",
    )


class ConversationClosed(_Data):
    """A chat ended or a ticket was closed (by the platform or by staff)."""

    conversation_id: str
    channel: Channel
    closed_at: Instant
    closed_by: str | None = Field(None, description="staff id, or the platform")
    patron_contact: str | None = Field(None, description="where the survey goes; student data")
    reason: str = "closed"
    read_scale: int | None = Field(None, ge=1, le=6, description="READ Scale effort, 1-6")
    topic: str | None = Field(None, description="desk statistics topic id")
    lang: str | None = Field(None, description="the conversation's language (the survey's)")
    survey: bool = Field(
        True,
        description="false: the patron gets no survey (a ticket closed with no reply sent to "
        "the patron: the survey says their question was answered)",
    )
    in_reply_to: str | None = Field(
        None,
        description="email: the Message-ID of the patron's latest email (the survey threads "
        "under it)",
    )
    references: list[str] = Field(
        default_factory=list, description="email: the thread's Message-IDs, oldest first"
    )
    subject: Text | None = Field(
        None, description="email: the patron's subject, for the survey's Re:; student data"
    )
    through: Instant | None = Field(
        None,
        description="the received time of the latest patron message the close accounted for: "
        "a patron message received after it reopens the conversation, even one that was on "
        "its way when the close was made (unset: the close's own time)",
    )


class ConversationTransferred(_Data):
    """The chat platform (or a staff member) moved a conversation to another department."""

    conversation_id: str
    channel: Channel
    department: str
    transferred_at: Instant
    by: str | None = None
    note: Text | None = None


# ---- refdesk.routing ------------------------------------------------------------------


class RuleHit(_Data):
    rule_id: str
    matched: list[str] = Field(
        default_factory=list, description="the words of the message the rule matched; student data"
    )


class StaffGuidance(_Data):
    summary: str = ""
    missing_fields: list[str] = Field(default_factory=list)
    extracted: dict[str, str] = Field(default_factory=dict, description="student data")


SMS_KEYWORD_RULE = "sms-keyword"
"""`RuleHit.rule_id` of a text that was one carrier or desk keyword (STOP, HELP, HOURS): refdesk
answered it itself (or recorded the opt-out), and nobody needs to."""


class RoutingDecided(_Data):
    """The router (or a staff transfer) decided where a conversation belongs."""

    decision_id: str
    interaction_id: str
    conversation_id: str
    channel: Channel
    action: Action
    department: str
    priority: Priority
    overnight: bool
    rules: list[RuleHit] = Field(default_factory=list)
    handoff_text: str | None = None
    guidance: StaffGuidance = Field(default_factory=StaffGuidance)
    fallback: str | None = Field(None, description="why a live transfer became a ticket")
    policy_version: str
    decided_at: Instant
    decided_by: str = "router"
    lang: str = Field("en", description="ISO 639-1 language of the patron's message")
    safety_review: bool = Field(
        False, description="not escalated, but the learned net saw possible crisis: read now"
    )
    risk_score: float | None = Field(None, ge=0, le=1, description="learned crisis risk")
    net: str | None = Field(None, description="which net escalated or flagged: rules | model")
    model_version: str | None = None
    follow_up: bool = Field(
        False,
        description="a later message of a conversation the router had already routed and that "
        "was not closed since: it leaves the conversation where it is unless it is a crisis",
    )


# ---- refdesk.notifications ------------------------------------------------------------


class NotificationKind(StrEnum):
    CIRCULATION_EMAIL = "circulation_email"
    SURVEY = "survey"
    HANDOFF = "handoff"
    CRISIS_ALERT = "crisis_alert"
    CRISIS_RESOURCES = "crisis_resources"
    AFTER_HOURS_ACK = "after_hours_ack"
    KEYWORD_REPLY = "keyword_reply"
    CRISIS_REESCALATION = "crisis_reescalation"
    STAFF_REPLY = "staff_reply"
    SAFETY_REVIEW_ALERT = "safety_review_alert"
    SMS_OPT_OUT = "sms_opt_out"
    SMS_OPT_IN = "sms_opt_in"


CONSENT_KINDS: frozenset[NotificationKind] = frozenset(
    {NotificationKind.SMS_OPT_OUT, NotificationKind.SMS_OPT_IN}
)
"""Kinds that send nothing: the patron's number texted STOP (or START), and the notifier
records it; every later text to an opted-out number is settled as refused (Twilio's 21610)."""


STAFF_FACING: frozenset[NotificationKind] = frozenset(
    {
        NotificationKind.CIRCULATION_EMAIL,
        NotificationKind.CRISIS_ALERT,
        NotificationKind.CRISIS_REESCALATION,
        NotificationKind.SAFETY_REVIEW_ALERT,
    }
)
"""Kinds mailed to staff; every other kind goes to the patron (the notifier tags those with
the ticket, and ingest threads a patron's reply to them)."""


def message_id_local(idempotency_key: str) -> str:
    """The left part (before "@") of the Message-ID of the email a command's key sends: the
    same every time the notification is built, so ingest can know it from the command."""
    return derived_id("notifier", "message-id", idempotency_key)


class NotificationRequested(_Data):
    """A command: send one message, exactly once per idempotency key."""

    idempotency_key: str
    kind: NotificationKind
    channel: Channel = Field(description="the channel the message is delivered on")
    recipient: str = Field(
        description="email address, E.164 phone or chat conversation; student data"
    )
    conversation_id: str
    interaction_id: str | None = None
    priority: Priority = Priority.NORMAL
    context: dict[str, Any] = Field(default_factory=dict, description="template values")
    requested_at: Instant


class StaffReplyContext(_Data):
    """What a staff member wrote to the patron, and how an email reply threads."""

    reply_id: str
    staff_id: str
    text: Text = Field(min_length=1, description="student data")
    subject: Text | None = Field(
        None, description="email: the reply's subject (Re: ...); student data"
    )
    in_reply_to: str | None = Field(None, description="email: the patron's Message-ID")
    references: list[str] = Field(default_factory=list, description="email: the thread's ids")
    lang: str = "en"
    staff_name: str | None = Field(None, description="signs an email reply")
    desk_name: str = "TCC Library"


# ---- notification contexts ------------------------------------------------------------
# What each kind's templates need (NotificationRequested.context): producers build these
# models and send `model_dump(mode="json")`; the notifier validates the context with the
# kind's model before rendering. Keys a model does not name are ignored (commands already on
# the topic may carry more). `lang` picks a template language where one exists ("es"), else
# English. Links are checked to be http(s): they land in href attributes.


def _web_url(value: str) -> str:
    if not re.match(r"https?://", value, re.IGNORECASE):
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:(?!\d)", value):
            raise ValueError("must be an http(s) link")
        value = "https://" + value  # the seed writes some links without a scheme
    if not re.fullmatch(r"https?://[^\s/]+\S*", value, re.IGNORECASE):
        raise ValueError("must be an http(s) link without spaces")
    return value


Url = Annotated[str, AfterValidator(_web_url)]


class _Context(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    lang: str = Field("en", description="ISO 639-1 language of the patron (templates: es)")


class CirculationEmailContext(_Context):
    """To circulation managers: a circulation request the desk cannot handle itself."""

    question: Text = Field(description="student data")
    channel: Channel = Field(description="where the patron asked")
    conversation_ref: str = Field(description="the ticket or chat reference staff search for")
    patron_name: str | None = None
    tcc_id: str | None = None
    item: str | None = None
    patron_contact: str | None = None
    contact_unverified: bool = Field(
        False, description="the patron's email failed the sender checks: it may be forged"
    )
    missing_fields: list[str] = Field(default_factory=list, description='e.g. ["tcc_id"]')
    details: dict[str, str] = Field(default_factory=dict, description="other pertinent facts")
    follow_up: bool = Field(
        False,
        description="more details for a request about the same conversation emailed before "
        "(what this one does not name may be in the earlier email)",
    )
    earlier_key: str | None = Field(
        None,
        max_length=128,
        description="a follow-up's: the idempotency key of the first circulation email about "
        "the conversation, whose Message-ID the notifier derives from it (this one threads "
        "under it: In-Reply-To, References)",
    )


class _AutomaticReplyContext(_Context):
    """An automatic answer to the patron's message (RFC 3834 "auto-replied")."""

    in_reply_to: str | None = Field(
        None, description="email: the Message-ID of the patron's email it answers (threads it)"
    )
    subject: str | None = Field(
        None, description="email: the subject of the patron's email it answers; student data"
    )


class SurveyContext(_AutomaticReplyContext):
    """To the patron after a ticket closes: the rating/comment survey. An email survey threads
    under the patron's latest email when `in_reply_to` names it (their mail client shows it
    in the conversation it asks about)."""

    references: list[str] = Field(
        default_factory=list, description="email: the thread's Message-IDs, oldest first"
    )

    survey_url: Url | None = Field(None, description="unset: the notifier's REFDESK_SURVEY_URL")
    patron_name: str | None = None
    desk_name: str = "TCC Library"


class HandoffContext(_AutomaticReplyContext):
    """To the patron: a warm hand-off to another department.

    `handoff_text` (the policy's or a staff member's words for this channel) is sent as
    written; without it the template says who will help, from `department_name`.
    """

    department_name: str | None = Field(
        None, description='no leading "the": "Reading/Writing Center"'
    )
    topic: str | None = Field(None, description='"your citations"')
    handoff_text: str | None = None
    desk_name: str = "TCC Library"

    @model_validator(mode="after")
    def _says_something(self) -> HandoffContext:
        if not (self.department_name or self.handoff_text):
            raise ValueError("department_name or handoff_text is required")
        return self


class _StaffAlertContext(_Context):
    """An alert to staff about one conversation."""

    console_url: Url | None = Field(
        None,
        description="the conversation in the desk console; the notifier fills it from "
        "REFDESK_CONSOLE_URL when a producer leaves it out",
    )


class CrisisKind(StrEnum):
    """What kind of crisis the router saw, named for the CARE Team (never the message's words).

    Open, as every enum of an event: a later router may send a value this list lacks, shown
    as given."""

    SUICIDE_SELF_HARM = "suicide_self_harm"  # crisis-suicide*, crisis-self-harm*
    VIOLENCE = "violence"  # crisis-violence*: violence or a threat
    ABUSE = "abuse"  # crisis-abuse*
    UNSAFE = "unsafe"  # crisis-unsafe*: feeling unsafe
    WARNING_SIGNS = "warning_signs"  # crisis-signals: several warning signs together
    LEARNED_MODEL = "learned_model"  # no crisis rule matched: the learned model read it


CRISIS_RULE_KINDS: tuple[tuple[str, CrisisKind], ...] = (
    ("crisis-suicide", CrisisKind.SUICIDE_SELF_HARM),
    ("crisis-self-harm", CrisisKind.SUICIDE_SELF_HARM),
    ("crisis-violence", CrisisKind.VIOLENCE),
    ("crisis-abuse", CrisisKind.ABUSE),
    ("crisis-unsafe", CrisisKind.UNSAFE),
    ("crisis-signals", CrisisKind.WARNING_SIGNS),
)
"""The kind of crisis each family of the policy's crisis rules stands for, by rule id prefix
(crisis-suicide, crisis-suicide-topic...)."""


def crisis_kinds_of(rule_ids: Iterable[str]) -> list[str]:
    """What kind of crisis these rules matched, in their order, each once; empty when no crisis
    rule is among them. The implicit signals (crisis-signals) fire beside most explicit rules
    and are named only alone."""
    kinds: list[str] = []
    for rule_id in rule_ids:
        for prefix, kind in CRISIS_RULE_KINDS:
            if rule_id.startswith(prefix) and kind.value not in kinds:
                kinds.append(kind.value)
    explicit = [k for k in kinds if k != CrisisKind.WARNING_SIGNS]
    return explicit or kinds


_PATRON_LANG = "ISO 639-1 language the patron wrote in (en, es); unset in older commands"
_CRISIS_KINDS = (
    "what the router saw, CrisisKind values (open: an unknown one is shown as given); empty "
    "in older commands"
)


class CrisisAlertContext(_StaffAlertContext):
    """To the CARE Team: a patron may be in crisis. It never carries the patron's words nor
    their contact: staff read those at the desk console."""

    conversation_ref: str
    channel: Channel
    care_report_url: Url
    urgency: Priority = Priority.URGENT
    campus: str | None = None
    summary: str | None = None
    detected_at: str | None = Field(None, description="preformatted local time")
    patron_lang: str | None = Field(None, description=_PATRON_LANG)
    crisis_kinds: list[str] = Field(default_factory=list, description=_CRISIS_KINDS)


class CrisisResourcesContext(_AutomaticReplyContext):
    """To the patron: counseling contacts and a crisis line."""

    counseling_url: Url
    crisis_line: str = "988"
    crisis_line_name: str | None = "Suicide & Crisis Lifeline"
    mhfa_url: Url | None = None
    desk_name: str = "TCC Library"


class AfterHoursAckContext(_AutomaticReplyContext):
    """To the patron: the desk is closed and when it opens."""

    next_open: str = Field(description='reads after "we open": "Monday at 8:00 AM"')
    hours_url: Url | None = None
    desk_name: str = "TCC Library"
    ack_text: str | None = Field(
        None,
        description="the routing policy's acknowledgement for the channel, in the patron's "
        "language, with {next_open} filled: sent as written (email: the message's body) when "
        "given; absent (commands from before it existed) the notifier's own wording",
    )


class KeywordReplyContext(_Context):
    """To the patron by SMS: the canned answer to a keyword such as HELP or HOURS."""

    reply_text: str
    keyword: str | None = None
    desk_name: str = "TCC Library"


class SmsConsentContext(_Context):
    """The patron's number opted out of texts (STOP) or back in (START); sends nothing."""

    keyword: str = Field(description="the carrier keyword texted, upper case: STOP, START...")
    confirmation_key: str | None = Field(
        None,
        description="opt-out: the idempotency key of the one confirmation text still sent "
        "(the policy's STOP reply), if there is one",
    )
    if_opted_out: bool = Field(
        False,
        description="opt-in: only if the number's latest change was an opt-out (YES texted "
        "alone, which is also an answer to a librarian); otherwise it changes nothing",
    )


class CrisisReescalationContext(_StaffAlertContext):
    """To supervisors: a crisis alert has not been acknowledged."""

    conversation_ref: str
    channel: Channel
    care_report_url: Url
    minutes_unacknowledged: int
    alerted_at: str | None = Field(
        None, description="when the CARE Team was alerted: an ISO time (shown in desk time)"
    )
    attempt: int = 1
    urgency: Priority = Priority.URGENT
    summary: str | None = None
    librarian: str | None = Field(
        None, description="the staff member who has the patron (display name), if anyone"
    )
    patron_lang: str | None = Field(None, description=_PATRON_LANG)
    crisis_kinds: list[str] = Field(default_factory=list, description=_CRISIS_KINDS)
    care_report_filed_by: str | None = Field(
        None, description="who recorded filing the CARE Team incident report (display name)"
    )
    care_report_filed_at: str | None = Field(
        None, description="when they recorded it: an ISO time (shown in desk time)"
    )


class SafetyReviewAlertContext(_StaffAlertContext):
    """To the staff on duty (the desk, not the CARE Team): possible crisis flagged for review."""

    conversation_ref: str
    channel: Channel
    care_report_url: Url
    department_name: str | None = Field(None, description="where the message was routed")
    detected_at: str | None = Field(None, description="preformatted local time")
    risk_score: float | None = Field(None, ge=0, le=1)
    patron_lang: str | None = Field(None, description="ISO 639-1 language the patron wrote in")


NOTIFICATION_CONTEXTS: dict[NotificationKind, type[BaseModel]] = {
    NotificationKind.CIRCULATION_EMAIL: CirculationEmailContext,
    NotificationKind.SURVEY: SurveyContext,
    NotificationKind.HANDOFF: HandoffContext,
    NotificationKind.CRISIS_ALERT: CrisisAlertContext,
    NotificationKind.CRISIS_RESOURCES: CrisisResourcesContext,
    NotificationKind.AFTER_HOURS_ACK: AfterHoursAckContext,
    NotificationKind.KEYWORD_REPLY: KeywordReplyContext,
    NotificationKind.CRISIS_REESCALATION: CrisisReescalationContext,
    NotificationKind.STAFF_REPLY: StaffReplyContext,
    NotificationKind.SAFETY_REVIEW_ALERT: SafetyReviewAlertContext,
    NotificationKind.SMS_OPT_OUT: SmsConsentContext,
    NotificationKind.SMS_OPT_IN: SmsConsentContext,
}
"""The context model of each kind (the notifier refuses a kind without one)."""


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class NotificationDelivered(_Data):
    """The notifier's outcome for one command (refdesk.deliveries): sent, or failed for good."""

    idempotency_key: str
    conversation_id: str
    kind: NotificationKind
    channel: Channel
    state: DeliveryState
    reason: str | None = Field(None, description="a short failure class, never a remote body")
    error_code: int | None = Field(
        None,
        ge=0,
        description=(
            "failed: the provider's code for refusing the message, when it gave one (Twilio's"
            " error code, e.g. 21610 unsubscribed, 21211 invalid number, 21614 not a mobile)"
        ),
    )
    text: str | None = Field(None, description="the text as delivered (plain); student data")
    subject: str | None = Field(None, description="an email's subject as sent; student data")
    message_id: str | None = Field(None, description="email Message-ID or provider message id")
    segments: int | None = Field(None, description="SMS segments")
    attempts: int = 1
    at: Instant


# ---- refdesk.sms-reports --------------------------------------------------------------


class SmsStatusReported(_Data):
    """What the SMS provider reported about a text refdesk sent (Twilio's status callback,
    received by ingest): the carrier delivered it, or could not. It names the text by the
    provider's message id only: no phone number, no text."""

    provider_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9]+$",
        description="the provider's id of the text (Twilio's MessageSid)",
    )
    status: str = Field(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z_]+$",
        description="the provider's word for it: queued, sent, delivered, undelivered, failed, ...",
    )
    error_code: int | None = Field(
        None, ge=0, description="why it was not delivered (Twilio's ErrorCode, e.g. 30007)"
    )
    reported_at: Instant


# ---- refdesk.desk ---------------------------------------------------------------------
# What staff did with a conversation that no other event records, so the desk's queue and
# transcripts can be rebuilt from the topics.


class StaffNoteAdded(_Data):
    """An internal note on a conversation: staff only, never sent to the patron."""

    note_id: str
    conversation_id: str
    staff_id: str
    text: Text = Field(min_length=1, description="may hold student data")
    at: Instant


class ConversationClaimed(_Data):
    """A staff member took a conversation."""

    conversation_id: str
    staff_id: str
    at: Instant


class ConversationReleased(_Data):
    """A conversation given back to the queue: its librarian let it go, or a supervisor took it
    from them (`assignee`: who had it); anyone who may see it may claim it now."""

    conversation_id: str
    staff_id: str = Field(description="who gave it back")
    assignee: str = Field(description="who had it")
    at: Instant


class CrisisAcknowledged(_Data):
    """A staff member acknowledged a crisis conversation (its re-escalation stops)."""

    conversation_id: str
    staff_id: str
    at: Instant


class CareReportFiled(_Data):
    """A staff member filed the CARE Team's incident report on the patron of this conversation
    (the desk's procedures: "If you believe a student is in crisis, fill out a CARE Team
    incident report"), in the college's own reporting system; refdesk records that it was
    done, by whom and when, never what it said. The first record stands."""

    conversation_id: str
    staff_id: str
    at: Instant


class CareReportWithdrawn(_Data):
    """The record of a CARE Team incident report taken back (pressed by mistake, or the report
    was never sent): the conversation shows no report filed again, so nobody takes it as done.
    Names the record it withdraws (`filed_at`); a later record stands whatever this says."""

    conversation_id: str
    staff_id: str
    filed_by: str
    filed_at: Instant
    at: Instant


class ConversationConverted(_Data):
    """An SMS thread became an email ticket under the same id."""

    conversation_id: str
    staff_id: str
    email: str = Field(description="student data")
    at: Instant


class ConversationTagged(_Data):
    """Staff changed a closed question's statistics tags (within 24 h of its close)."""

    conversation_id: str
    staff_id: str
    read_scale: int | None = Field(None, ge=1, le=6, description="READ Scale effort, 1-6")
    topic: str | None = Field(None, description="desk statistics topic id")
    at: Instant


class ContactBlocked(_Data):
    """Staff blocked a patron's phone number or email address from a conversation of theirs
    (harassment, abuse, a bot): ingest marks the contact's later messages `blocked`, so the
    router routes them only when a crisis net fires or flags them for review, and nothing
    automatic (acknowledgement, survey) answers them. In force until `ContactUnblocked`."""

    contact: Text = Field(description="E.164 phone or lower-cased email; student data")
    conversation_id: str | None = Field(None, description="where staff blocked it")
    staff_id: str
    reason: Text | None = Field(
        None, max_length=255, description="staff's words; may name the patron"
    )
    at: Instant


class ContactUnblocked(_Data):
    """A supervisor took a contact off the blocklist: its messages reach the desk again."""

    contact: Text = Field(description="E.164 phone or lower-cased email; student data")
    conversation_id: str | None = Field(None, description="the conversation it was blocked from")
    staff_id: str
    at: Instant


class ConversationErased(_Data):
    """An admin erased a patron's closed conversation on their request: its transcript and the
    patron's details are removed at once, as retention would have later, and a replay of its
    earlier events brings nothing back (`channel` and `opened_at` let a status service that
    has not seen the conversation yet keep it erased)."""

    conversation_id: str
    channel: Channel
    opened_at: Instant
    staff_id: str
    reason: str = Field(max_length=300, description="the request it answers; no patron data")
    erased_at: Instant


# ---- refdesk.presence -----------------------------------------------------------------


class PresenceChanged(_Data):
    """A staff member's availability changed (compacted topic, keyed by staff id)."""

    staff_id: str
    status: StaffStatus
    departments: list[str]
    campus: str | None = None
    changed_at: Instant
    changed_by: str | None = None


# ---- *.dlq ----------------------------------------------------------------------------


class DeadLetter(_Data):
    """A message a consumer could not process, with the reason."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: str = Field(description="the original bytes, decoded as UTF-8 with replacement")
    reason: str
    consumer_group: str
    failed_at: Instant


# ---- envelope -------------------------------------------------------------------------

D = TypeVar("D")

EVENT_TYPES: dict[str, type[BaseModel]] = {
    "edu.tccd.refdesk.interaction.received.v1": InteractionReceived,
    "edu.tccd.refdesk.conversation.closed.v1": ConversationClosed,
    "edu.tccd.refdesk.conversation.transferred.v1": ConversationTransferred,
    "edu.tccd.refdesk.routing.decided.v1": RoutingDecided,
    "edu.tccd.refdesk.notification.requested.v1": NotificationRequested,
    "edu.tccd.refdesk.presence.changed.v1": PresenceChanged,
    "edu.tccd.refdesk.notification.delivered.v1": NotificationDelivered,
    "edu.tccd.refdesk.sms.status_reported.v1": SmsStatusReported,
    "edu.tccd.refdesk.desk.note_added.v1": StaffNoteAdded,
    "edu.tccd.refdesk.desk.claimed.v1": ConversationClaimed,
    "edu.tccd.refdesk.desk.released.v1": ConversationReleased,
    "edu.tccd.refdesk.desk.crisis_acknowledged.v1": CrisisAcknowledged,
    "edu.tccd.refdesk.desk.care_report_filed.v1": CareReportFiled,
    "edu.tccd.refdesk.desk.care_report_withdrawn.v1": CareReportWithdrawn,
    "edu.tccd.refdesk.desk.converted.v1": ConversationConverted,
    "edu.tccd.refdesk.desk.tagged.v1": ConversationTagged,
    "edu.tccd.refdesk.desk.erased.v1": ConversationErased,
    "edu.tccd.refdesk.desk.contact_blocked.v1": ContactBlocked,
    "edu.tccd.refdesk.desk.contact_unblocked.v1": ContactUnblocked,
    "edu.tccd.refdesk.dead_letter.v1": DeadLetter,
}
TYPE_OF: dict[type[BaseModel], str] = {model: name for name, model in EVENT_TYPES.items()}


class CloudEvent(BaseModel, Generic[D]):
    """A CloudEvents 1.0 event in structured JSON mode."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    time: Instant
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: D


AnyEvent = CloudEvent[dict[str, Any]]
_OUTGOING = CloudEvent[Any]
"""The envelope new events are built in (parametrised once: pydantic looks a parametrised
generic up in a cache on every subscript)."""


def new_event(
    data: BaseModel, *, source: str, subject: str | None = None, event_id: str | None = None
) -> CloudEvent[Any]:
    """Wrap event data in a CloudEvents envelope with its registered type."""
    return _OUTGOING(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=TYPE_OF[type(data)],
        time=datetime.now(UTC),
        subject=subject,
        data=data,
    )


def derived_id(*parts: str) -> str:
    """A deterministic id derived from other ids, so a retried step yields the same id."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def parse_data(event: AnyEvent) -> BaseModel:
    """Validate an envelope's data against the model its type names; KeyError if unknown."""
    return EVENT_TYPES[event.type].model_validate(event.data)


# ---- refdesk.public -------------------------------------------------------------------
# What other campus systems may read: no names, contacts, TCC IDs, staff ids or message
# text; conversation ids replaced by a keyed hash. Unknown fields are ignored (not
# forbidden) so an additive change keeps the type; a breaking change gets a new .vN type.


class _PublicData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PublicInteractionReceived(_PublicData):
    """A patron's message reached the desk (public view)."""

    conversation_hash: str = Field(description="HMAC-SHA256 of the conversation id, hex")
    channel: Channel
    campus_hint: str | None = Field(None, description="a campus id the platform gave, if any")
    department_hint: str | None = Field(None, description="a department id the platform gave")
    received_at: Instant
    overnight: bool | None = Field(
        None, description="not known yet when a message arrives; see conversation.routed"
    )
    automatic: bool = Field(
        False,
        description="sent by a mail system, not a person: an automatic reply or a bounce "
        "(count patrons' messages without these)",
    )


class PublicConversationRouted(_PublicData):
    """A conversation was routed to a department (public view)."""

    conversation_hash: str = Field(description="HMAC-SHA256 of the conversation id, hex")
    channel: Channel
    action: Action
    department: str
    priority: Priority
    overnight: bool
    decided_at: Instant
    follow_up: bool = Field(
        False,
        description="a later message of a conversation already routed: the conversation "
        "stays where it is unless the action is escalate_crisis",
    )


class PublicConversationClosed(_PublicData):
    """A chat ended or a ticket was closed (public view)."""

    conversation_hash: str = Field(description="HMAC-SHA256 of the conversation id, hex")
    channel: Channel
    closed_at: Instant
    reason: str | None = Field(None, description="a short reason id such as closed or ended")


class PublicDepartmentPresence(_PublicData):
    """How many staff are Online for a department, after a presence change."""

    department: str
    online: int = Field(ge=0, description="staff currently Online for this department")
    changed_at: Instant


PUBLIC_EVENT_TYPES: dict[str, type[BaseModel]] = {
    "edu.tccd.refdesk.public.interaction.received.v1": PublicInteractionReceived,
    "edu.tccd.refdesk.public.conversation.routed.v1": PublicConversationRouted,
    "edu.tccd.refdesk.public.conversation.closed.v1": PublicConversationClosed,
    "edu.tccd.refdesk.public.department.presence.v1": PublicDepartmentPresence,
}
EVENT_TYPES.update(PUBLIC_EVENT_TYPES)
TYPE_OF.update({model: name for name, model in PUBLIC_EVENT_TYPES.items()})
