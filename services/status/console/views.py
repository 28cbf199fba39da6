"""How the console shows things: desk-time stamps, sizes, queue filters and transcript lines.

Plain functions over the JSON views the API already returns (`queue.row_view`,
`reading.conversation_view`), so the page and the API never disagree about the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import phonenumbers
from starlette.datastructures import QueryParams

from services.status.console import timeline
from services.status.conversations.transcript import ANOTHER_SENDER, AUTOMATIC_LABEL, REPLY_OVERDUE
from services.status.queue import QueueFilter, band
from services.status.stats.desktime import check_days
from shared.clock import DESK_TZ
from shared.events import Channel, NotificationKind
from shared.text import without_mark_stacks

SMS_SEGMENT_BUDGET = 3
"""Segments a staff text may cost before the composer warns (no policy sets one yet)."""

DELIVERY_LABELS = {
    "queued": "Queued",
    "sent": "Sent",
    "delivered": "Delivered",
    "undelivered": "Not delivered",
    "failed": "Not delivered",
    "delayed": "Delayed",
    "retrying": "Not sent yet",
}
"""A line's delivery as the console says it: the notifier's outcome (queued, sent, failed),
then for a text what the carrier reported (delivered, undelivered), for an email what a mail
system reported (undelivered, delayed)."""
SENDS_THROUGH = {"email": "the mail relay", "sms": "Twilio", "chat": "the chat platform"}
STAFF_EMAILS = {
    NotificationKind.CRISIS_ALERT.value: "The CARE Team's alert email",
    NotificationKind.CRISIS_REESCALATION.value: "The re-escalation email to supervisors",
    NotificationKind.SAFETY_REVIEW_ALERT.value: "The possible-crisis email to staff on duty",
    NotificationKind.CIRCULATION_EMAIL.value: "The email to the circulation managers",
}
"""The emails refdesk sends to staff, as a timeline line names one that has not gone out: its
line otherwise says what was done ("CARE Team alerted"), true only once it has."""
CARE_ALERT = NotificationKind.CRISIS_ALERT.value
NOT_OUT = ("failed", "undelivered", "retrying")
"""A line's states (as `line_view` shows them) of a message that has not reached anyone."""


def still_trying(channel: str | None, since: datetime | str, now: datetime) -> str:
    """Why a message long queued is not out yet, and that nobody need send it again."""
    through = SENDS_THROUGH.get(channel or "", "the provider")
    when = desk_time(since, now).removeprefix("Today ")
    return (
        f"refdesk has tried since {when} and sends it once {through} accepts it;"
        " do not send it again"
    )


def moment(at: datetime | str) -> datetime:
    """A line's or row's moment, as the view has it (ISO text from the API, or a datetime)."""
    return datetime.fromisoformat(at) if isinstance(at, str) else at


REPLY_HEADINGS = {
    "chat": "Reply in the chat",
    "sms": "Reply by text message",
    "email": "Reply by email",
}
SEND_LABELS = {"chat": "Send chat message", "sms": "Send text message", "email": "Send email"}
DATE_PARAMS = {"from": "From", "to": "To"}
"""The search's date parameters and the labels of their fields on the page."""


def desk_time(at: datetime | str | None, now: datetime) -> str:
    """A time as staff read it, in desk time: "Today 9:14 AM", "Mon 4:02 PM", "Mar 4, 4:02 PM"."""
    if at is None:
        return ""
    when = moment(at).astimezone(DESK_TZ)
    today = now.astimezone(DESK_TZ).date()
    clock = when.strftime("%I:%M %p").lstrip("0")
    days = (today - when.date()).days
    if days == 0:
        return f"Today {clock}"
    if days == 1:
        return f"Yesterday {clock}"
    if 1 < days < 7:
        return f"{when:%a} {clock}"
    if when.year == today.year:
        return f"{when:%b} {when.day}, {clock}"
    return f"{when:%b} {when.day}, {when.year}, {clock}"


def dated_time(at: datetime | str | None) -> str:
    """A date and time in desk time that reads the same on any day, for a printed record, with
    its zone: "Feb 26, 2025, 9:00 AM CST" (the repeated hour of a November night reads in
    order, 1:50 AM CDT before 1:05 AM CST)."""
    if at is None:
        return ""
    when = moment(at).astimezone(DESK_TZ)
    clock = when.strftime("%I:%M %p").lstrip("0")
    return f"{when:%b} {when.day}, {when.year}, {clock} {when.tzname()}"


def full_time(at: datetime | str | None) -> str:
    """The whole date and time in desk time, for a tooltip: "Tuesday, March 4, 2025, 9:14 AM"."""
    if at is None:
        return ""
    when = moment(at).astimezone(DESK_TZ)
    clock = when.strftime("%I:%M %p").lstrip("0")
    return f"{when:%A}, {when:%B} {when.day}, {when.year}, {clock} {when.tzname()}"


CUT_NOTE = re.compile(
    r"(?P<what>sms-body|email-text|chat-text)-beyond-(?P<limit>\d+)-characters\.txt"
)
"""The attachment name ingest gives the part of a text or an email past what it carries."""


def cut_words(name: str, size: int | None) -> str:
    """What a cut note says, in words: how much of the message was not kept, and why."""
    found = CUT_NOTE.fullmatch(name)
    assert found is not None
    limit = int(found["limit"])
    what = {"sms-body": "text", "email-text": "email", "chat-text": "chat message"}[found["what"]]
    rest = f"the last {size:,} characters" if size else "the rest"
    return f"This {what} was longer than {limit:,} characters: {rest} were not kept."


def file_size(size: int | None) -> str:
    """Bytes as people read them: "812 bytes", "14 KB", "2.3 MB"."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} bytes" if size != 1 else "1 byte"
    kb = size / 1024
    if kb < 1024:
        return f"{kb:.0f} KB" if kb >= 10 else f"{kb:.1f} KB"
    mb = kb / 1024
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


CHANNEL_NAMES = {"whatsapp": "WhatsApp"}
"""Twilio channels besides SMS, as people name them (ingest stores `whatsapp:+1...`)."""


def _channel_and_number(contact: str | None) -> tuple[str | None, str | None]:
    """(the other channel's name or None, the E.164 part) of a stored contact."""
    if not contact:
        return None, None
    channel, colon, rest = contact.partition(":")
    if colon and channel in CHANNEL_NAMES and rest.startswith("+"):
        return CHANNEL_NAMES[channel], rest
    return None, contact


def _stored_phone(contact: str | None) -> phonenumbers.PhoneNumber | None:
    """The contact as a phone number if it is one (stored in E.164, or a channel's number
    such as `whatsapp:+1...`), else None."""
    _channel, contact = _channel_and_number(contact)
    if not contact or not contact.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(contact)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def readable_contact(contact: str | None) -> str | None:
    """A patron's contact as people write it: an American number as (817) 555-0142, any
    other in its international form (+44 20 7946 0958), a WhatsApp sender's number followed
    by "(WhatsApp)"; anything else as it is."""
    number = _stored_phone(contact)
    if number is None:
        return contact
    form = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    channel, _number = _channel_and_number(contact)
    readable = phonenumbers.format_number(number, form)
    return f"{readable} ({channel})" if channel else readable


def dialable(contact: str | None) -> str | None:
    """The number for a `tel:` link if the contact is a phone number (E.164, as stored; a
    WhatsApp sender's number too), else None."""
    return _channel_and_number(contact)[1] if _stored_phone(contact) is not None else None


def sort_key(row: dict[str, Any]) -> str:
    """A string that sorts queue rows in desk order (the browser inserts live rows by it)."""
    order = band(
        crisis=row["crisis"],
        acknowledged=row["acknowledged"],
        safety_review=row["safety_review"],
        overnight=row["overnight"],
        answered=row["answered"],
    )
    opened = datetime.fromisoformat(row["opened_at"])
    return f"{order}|{opened.astimezone(DESK_TZ):%Y%m%d%H%M%S%f}|{row['conversation_id']}"


@dataclass(frozen=True)
class Ignored:
    """A query parameter the queue ignored, and why in words."""

    param: str
    sentence: str


@dataclass(frozen=True)
class Filters:
    """What the queue shows: the queue's filters, or a search."""

    mine: bool = False
    unassigned: bool = False
    overnight: bool = False
    crisis: bool = False
    department: str | None = None
    channel: Channel | None = None
    q: str | None = None
    contact: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    ignored: tuple[Ignored, ...] = field(default=(), compare=False)
    """What the query string asked for that could not be read, said on the page."""

    @property
    def searching(self) -> bool:
        """Whether this is a search (text, contact or dates) rather than the open queue."""
        return bool(self.q or self.contact or self.date_from or self.date_to)

    @property
    def dates_ignored(self) -> bool:
        """Whether a date of the search was ignored (the page then shows the date fields)."""
        return any(i.param in DATE_PARAMS for i in self.ignored)

    @property
    def narrowed(self) -> bool:
        """Whether any filter or search narrows the queue."""
        flags = self.mine or self.unassigned or self.overnight or self.crisis
        return flags or bool(self.department or self.channel) or self.searching

    def api_args(self) -> dict[str, Any]:
        """Keyword arguments for GET /conversations's function."""
        return {
            "department": self.department,
            "channel": self.channel,
            "mine": self.mine,
            "unassigned": self.unassigned,
            "overnight": True if self.overnight else None,
            "crisis": True if self.crisis else None,
            "q": self.q,
            "contact": self.contact,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "pin_crises": True,
        }

    def one_row(self, conversation_id: str) -> QueueFilter:
        """The queue's filter narrowed to one conversation (a search keeps closed ones)."""
        return QueueFilter(
            state="all" if self.searching else "open",
            department=self.department,
            channel=self.channel,
            mine=self.mine,
            unassigned=self.unassigned,
            overnight=True if self.overnight else None,
            crisis=True if self.crisis else None,
            pin_crises=True,
            only=conversation_id,
        )


def _text(params: QueryParams, name: str, limit: int) -> str | None:
    value = (params.get(name) or "").strip()
    return value[:limit] or None


def _as_typed(value: str) -> str:
    """A value from the query string as the page quotes it back (long ones cut short)."""
    return f"“{value[:40]}…”" if len(value) > 40 else f"“{value}”"


def _date(params: QueryParams, name: str, ignored: list[Ignored]) -> date | None:
    typed = (params.get(name) or "").strip()
    if not typed:
        return None
    label = DATE_PARAMS[name]
    try:
        day = date.fromisoformat(typed)
    except ValueError:
        why = "it is not a date like 2026-09-14"
    else:
        out_of_range = check_days(day, None)
        if out_of_range is None:
            return day
        why = out_of_range
    ignored.append(Ignored(name, f"The {label} date {_as_typed(typed)} was ignored: {why}."))
    return None


def _channel(params: QueryParams, ignored: list[Ignored]) -> Channel | None:
    typed = (params.get("channel") or "").strip()
    if not typed:
        return None
    if typed in {c.value for c in Channel}:
        return Channel(typed)
    sentence = f"The channel {_as_typed(typed)} was ignored: the desk has chat, SMS and email."
    ignored.append(Ignored("channel", sentence))
    return None


def parse_filters(params: QueryParams) -> Filters:
    """The queue's filters from a query string: never an error, but a date or channel that
    cannot be read is left out and said in `ignored` (the page shows why)."""
    ignored: list[Ignored] = []
    channel = _channel(params, ignored)
    first, last = _date(params, "from", ignored), _date(params, "to", ignored)
    if first and last and first > last:  # a range typed backwards means the same days, said
        first, last = last, first
        ignored.append(
            Ignored(
                "from",
                f"The From date {last.isoformat()} came after the To date {first.isoformat()}: "
                "the search ran from the earlier to the later.",
            )
        )
    return Filters(
        mine=params.get("mine") == "1",
        unassigned=params.get("unassigned") == "1",
        overnight=params.get("overnight") == "1",
        crisis=params.get("crisis") == "1",
        department=_text(params, "department", 64),
        channel=channel,
        q=_text(params, "q", 200),
        contact=_text(params, "contact", 320),
        date_from=first,
        date_to=last,
        ignored=tuple(ignored),
    )


def line_view(
    message: dict[str, Any],
    *,
    names: dict[str, str],
    now: datetime,
    patron: str | None = None,
    department_name: Callable[[str], str] = str,
) -> dict[str, Any]:
    """One transcript line with who wrote it, in words, and which kind of line it is:
    patron, automatic (mail a mail system sent), staff, automated, note or event (whose text
    the view already gives with names, `reading.event_text`; a routing line's rules are also
    named in words, `routed`)."""
    author = message.get("author") or ""
    direction = message["direction"]
    if direction == "in" and message.get("automatic"):
        role, who = "automatic", AUTOMATIC_LABEL.get(message.get("kind") or "", "Automatic mail")
    elif direction == "in" and author.startswith(ANOTHER_SENDER):
        role, who = "patron", f"{author.removeprefix(ANOTHER_SENDER)} (not the patron)"
    elif direction == "in":
        role, who = "patron", patron or "Patron"
    elif direction == "note":
        role, who = "note", f"Note by {names.get(author, author)}"
    elif direction == "event":
        role, who = "event", ""
    elif message.get("kind") == "staff_reply" or (not message.get("automated") and author in names):
        role, who = "staff", names.get(author, author)
    else:
        role, who = "automated", f"Automated: {message.get('automated') or 'message'}"
    delivery = message.get("delivery") or {}
    state, reason = delivery.get("state"), delivery.get("reason")
    overdue = now - moment(message["at"]) >= REPLY_OVERDUE
    staff_email = STAFF_EMAILS.get(message.get("kind") or "") if direction == "event" else None
    if state == "queued" and direction == "out" and overdue:
        state, reason = "retrying", still_trying(message.get("channel"), message["at"], now)
    elif staff_email and state is None and overdue:  # no outcome yet: the relay is retried
        state, reason = "retrying", still_trying("email", message["at"], now)
    text = message.get("text")
    if staff_email and state in NOT_OUT:
        text = staff_email  # "CARE Team alerted" would say it reached them
    elif staff_email and state is None:  # asked for, no outcome yet: not "alerted" until it is
        text = f"{staff_email} is being sent"
    attachments, cut = [], None
    for a in message.get("attachments") or []:
        name = a.get("name", "file")
        if CUT_NOTE.fullmatch(name):  # ingest's name for what did not fit, not a file
            cut = cut_words(name, a.get("size"))
        else:
            # a texted photo's size is not known (Twilio does not say): no "(0 bytes)"
            size = a.get("size")
            attachments.append({"name": name, "size": file_size(size) if size else ""})
    return {
        **message,
        "text": shown_text(text),
        "role": role,
        "who": who,
        "when": desk_time(message["at"], now),
        "when_full": full_time(message["at"]),
        "delivery_state": state,
        "delivery_label": DELIVERY_LABELS.get(state or "", state or ""),
        "delivery_reason": reason,
        "attachments": attachments,
        "cut": cut,
        # photos and files texted (MMS) are named, never kept: say so where they are listed
        "files_not_kept": bool(attachments) and message.get("channel") == "sms",
        "routed": (
            timeline.routed_line(message.get("text") or "", department_name)
            if role == "event" and message.get("kind") == "routed"
            else None
        ),
    }


def care_alert(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Whether the CARE Team's alert for this crisis has not reached them, from its latest
    line as `line_view` shows it: refused for good ("failed"), bounced ("undelivered") or still
    not out minutes after it was asked for ("retrying"); None once it went out (or when there
    was none)."""
    alerts = [line for line in lines if line.get("kind") == CARE_ALERT]
    if not alerts:
        return None
    latest = alerts[-1]
    state = latest["delivery_state"]
    if state not in NOT_OUT:
        return None
    return {"state": state, "reason": latest["delivery_reason"], "when": latest["when"]}


_BLANK_RUN = re.compile(r"\n[ \t\r\f\v]*(?:\n[ \t\r\f\v]*){2,}")


def shown_text(text: str | None) -> str | None:
    """A message's text as a line shows it: runs of blank lines (a text of sixty newlines filled
    the pane with an empty bubble) are one blank line, and a letter carries at most three
    combining marks (`without_mark_stacks`); the stored text is unchanged."""
    if not text:
        return text
    return _BLANK_RUN.sub("\n\n", without_mark_stacks(text)).strip("\n")


CONSENT_KINDS = frozenset({NotificationKind.SMS_OPT_OUT.value, NotificationKind.SMS_OPT_IN.value})


def opted_out(messages: list[dict[str, Any]]) -> bool:
    """Whether the patron's number, last heard of in this conversation, had opted out of texts
    (STOP, and no START since): the notifier sends it nothing, so the composer says so."""
    said = [m["kind"] for m in messages if m.get("kind") in CONSENT_KINDS]
    return bool(said) and said[-1] == NotificationKind.SMS_OPT_OUT.value


def reply_subject(subject: str | None, *, first_email: bool = False) -> str:
    """The email reply's subject as the composer first shows it; the first email of a text
    thread turned email answers no email, so it says no "Re:" (`first_email`)."""
    base = (subject or "").strip() or "Your question to the TCC Library"
    if first_email or base.lower().startswith("re:"):
        return base
    return f"Re: {base}"
