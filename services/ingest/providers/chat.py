"""The chat platform's webhooks: Standard Webhooks signatures and JSON lifecycle events.

Transport (https://www.standardwebhooks.com/): a POST with `content-type: application/json`
and three headers: `webhook-id` (unique per event, the same on every retry: dedupe on it),
`webhook-timestamp` (Unix seconds, re-stamped on each attempt) and `webhook-signature`
(space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`; several during
key rotation). The secret is `whsec_<base64>`. Attempts more than 5 minutes old or ahead
are refused.

Body: `{"type": ..., "timestamp": <ISO 8601 with offset>, "data": {...}}`. Unknown fields
are ignored (the platform may add some); unknown types are refused (422) so the platform
surfaces them. Types and their `data`:

- `chat.started`: conversation_id, channel ("chat"), patron, department, campus, question
- `chat.message`: conversation_id, message_id, text, author ("patron"; "staff" or "refdesk",
  any case, is not a patron's message and is answered `ignored`; any other author is refused),
  staff_id, sequence (0 to 2^63 - 1), channel, patron, department, campus
- `chat.transferred`: conversation_id, channel, department (where to), from_department,
  by (staff id), note (the warm hand-off text)
- `chat.ended`: conversation_id, channel, closed_by (staff id, "patron" or "platform"),
  reason, patron
- `ticket.closed`: as chat.ended, for any channel ("chat", "sms" or "email"; required)

`patron` is {"name", "email", "phone", "role"}, every field optional; email is lower-cased,
phone made E.164, role one of student/faculty/unknown (anything else reads as unknown).
Example::

    {
      "type": "chat.message",
      "timestamp": "2025-01-06T14:02:11Z",
      "data": {
        "conversation_id": "chat-81234",
        "message_id": "msg-5531",
        "sequence": 3,
        "author": "patron",
        "text": "How do I cite a journal article in APA?",
        "channel": "chat",
        "patron": {"name": "Jane Doe", "email": "jane.doe@my.tccd.edu", "role": "student"},
        "department": "reference",
        "campus": "campus-nw"
      }
    }
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from services.ingest.providers.contacts import normalize_email, normalize_phone
from services.ingest.providers.errors import (
    InvalidField,
    InvalidSignature,
    MalformedBody,
    MissingSignature,
    ProviderError,
    StaleTimestamp,
    UnknownEventType,
)
from services.ingest.providers.text import CONVERSATION_ID_PATTERN
from shared.events import SEQUENCE_MAX, Channel, Instant, Patron, PatronRole

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
TOLERANCE = timedelta(minutes=5)  # the Standard Webhooks specification's window
MAX_TEXT = 10_000


def _valid(check: Any) -> Any:
    """Wrap a contact normaliser so its InvalidField reads as a pydantic ValueError."""

    def validate(value: str) -> str:
        try:
            return str(check(value))
        except ProviderError as exc:
            raise ValueError(exc.detail) from exc

    return validate


def _role(value: object) -> object:
    """Lower-case a role; one the desk does not know reads as unknown rather than failing."""
    if isinstance(value, str):
        value = value.strip().lower()
        return value if value in PatronRole._value2member_map_ else PatronRole.UNKNOWN
    return value


ConversationId = Annotated[str, StringConstraints(pattern=rf"^{CONVERSATION_ID_PATTERN}$")]
Id = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Label = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT, strip_whitespace=True)]
Words = Annotated[str, StringConstraints(strip_whitespace=True)]
"""A patron's words: any length the body limit lets through; the event carries the first
100,000 characters and says how much more came (`translate`), as an email does (a chat
message over 10,000 characters had been refused 422, the question lost)."""
Email = Annotated[str, AfterValidator(_valid(normalize_email))]
Phone = Annotated[str, AfterValidator(_valid(normalize_phone))]
Role = Annotated[PatronRole, BeforeValidator(_role)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ChatPatron(_Model):
    """The patron as the chat platform knows them; student data."""

    name: Label | None = None
    email: Email | None = None
    phone: Phone | None = None
    role: Role = PatronRole.UNKNOWN

    def as_patron(self) -> Patron:
        """The wire-contract Patron: contact is the email, else the phone."""
        return Patron(contact=self.email or self.phone, name=self.name or None, role=self.role)


class ChatStartedData(_Model):
    conversation_id: ConversationId
    channel: Channel = Channel.CHAT
    patron: ChatPatron = Field(default_factory=ChatPatron)
    department: Label | None = None
    campus: Label | None = None
    question: Words | None = Field(None, description="the pre-chat form's question")


def _lower_stripped(value: object) -> object:
    """A word as sent, in lower case ("Patron" is "patron")."""
    return value.strip().lower() if isinstance(value, str) else value


class ChatMessageData(_Model):
    conversation_id: ConversationId
    message_id: Id
    text: Annotated[Words, StringConstraints(min_length=1)]
    # "patron" is recorded; "staff" and "refdesk" (refdesk's own message echoed back by a
    # platform that relays every message it shows) are not a patron's: ignored. Any other
    # author is refused (422): read as not a patron's, a crisis written by "Patron" or
    # "visitor" had been dropped in silence
    author: Annotated[Literal["patron", "staff", "refdesk"], BeforeValidator(_lower_stripped)] = (
        "patron"
    )
    staff_id: Label | None = None
    # an integer as JSON writes one: true, "12" and 1.0 were read as numbers
    sequence: StrictInt | None = Field(None, ge=0, le=SEQUENCE_MAX)
    channel: Channel = Channel.CHAT
    patron: ChatPatron | None = None
    department: Label | None = None
    campus: Label | None = None


class ChatTransferredData(_Model):
    conversation_id: ConversationId
    channel: Channel = Channel.CHAT
    department: Annotated[Label, StringConstraints(min_length=1)]
    from_department: Label | None = None
    by: Label | None = None
    note: Text | None = None


class ChatEndedData(_Model):
    conversation_id: ConversationId
    channel: Channel = Channel.CHAT
    closed_by: Label | None = Field(None, description='a staff id, "patron" or "platform"')
    reason: Label = "ended"
    patron: ChatPatron | None = None


class TicketClosedData(ChatEndedData):
    channel: Channel
    reason: Label = "closed"


class ChatStarted(_Model):
    type: Literal["chat.started"]
    timestamp: Instant
    data: ChatStartedData


class ChatMessage(_Model):
    type: Literal["chat.message"]
    timestamp: Instant
    data: ChatMessageData


class ChatTransferred(_Model):
    type: Literal["chat.transferred"]
    timestamp: Instant
    data: ChatTransferredData


class ChatEnded(_Model):
    type: Literal["chat.ended"]
    timestamp: Instant
    data: ChatEndedData


class TicketClosed(_Model):
    type: Literal["ticket.closed"]
    timestamp: Instant
    data: TicketClosedData


ChatEvent = Annotated[
    ChatStarted | ChatMessage | ChatTransferred | ChatEnded | TicketClosed,
    Field(discriminator="type"),
]
_EVENT: TypeAdapter[ChatEvent] = TypeAdapter(ChatEvent)


_TIMESTAMP = re.compile(r"[0-9]{1,12}")
MAX_WEBHOOK_ID = 255
"""Longest webhook-id kept (the seen-keys column)."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError if it holds none (configuration)."""
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    if not key:
        raise ValueError("the Standard Webhooks secret is empty")
    return key


def verify_chat_webhook(
    *, secret: str, headers: Mapping[str, str], body: bytes, now: datetime | None = None
) -> None:
    """Raise unless `body` carries a valid, current Standard Webhooks signature.

    The HMAC-SHA256 is computed over "{webhook-id}.{webhook-timestamp}." and the body's raw
    bytes, whatever their charset (an 8-bit ISO-8859-1 email is signed as sent). Checked in
    this order: MissingSignature if a webhook-* header is absent, InvalidSignature if no v1
    signature matches (so a forgery is never reported as merely stale), StaleTimestamp if
    webhook-timestamp is over 5 minutes from now.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in SIGNATURE_HEADERS:
        if not lowered.get(name, "").strip():
            raise MissingSignature(name, "missing")
    msg_id, stamp = lowered["webhook-id"], lowered["webhook-timestamp"].strip()
    if len(msg_id) > MAX_WEBHOOK_ID:
        raise InvalidSignature("webhook-id", f"longer than {MAX_WEBHOOK_ID} characters")
    if not _TIMESTAMP.fullmatch(stamp):
        raise InvalidSignature("webhook-timestamp", "not a Unix time in seconds")
    signed = f"{msg_id}.{stamp}.".encode("utf-8", "surrogateescape") + body
    expected = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    matched = False
    for item in lowered["webhook-signature"].split():
        version, _, encoded = item.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise InvalidSignature("webhook-signature", "signature does not match")
    sent = datetime.fromtimestamp(int(stamp), UTC)
    if abs((now or datetime.now(UTC)) - sent) > TOLERANCE:
        raise StaleTimestamp("webhook-timestamp", "outside the 5 minute window")


def _path(loc: tuple[int | str, ...]) -> str:
    """A dotted field path ("data.patron.email") from a pydantic error location."""
    return ".".join(str(part) for part in loc) or "body"


def parse_chat_event(body: bytes) -> ChatEvent:
    """Parse a (verified) chat webhook body: MalformedBody (400) if it is not JSON at all
    (truncated, invalid UTF-8, empty), UnknownEventType or InvalidField(path) (422) if it is
    JSON of the wrong shape."""
    try:
        event: ChatEvent = _EVENT.validate_json(body)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        kind, loc = error["type"], tuple(error["loc"])
        if kind == "json_invalid":
            raise MalformedBody("body", "not valid JSON (or not UTF-8)") from exc
        if kind == "union_tag_invalid":
            raise UnknownEventType("type", "unknown event type") from exc
        if kind == "union_tag_not_found":
            raise InvalidField("type", "missing") from exc
        # After the discriminator resolves, pydantic prefixes the location with the tag.
        raise InvalidField(_path(loc[1:] if loc else loc), error["msg"]) from exc
    data = event.data
    for prefix, channel in OWN_IDS.items():
        if data.conversation_id.startswith(prefix) and data.channel != channel:
            raise InvalidField(
                "data.conversation_id", f"an {channel} conversation's id on a {data.channel} event"
            )
    return event


OWN_IDS = {"sms-": Channel.SMS, "email-": Channel.EMAIL}
"""The ids ingest gives the conversations it threads itself (texts and emails). The platform
may close such a ticket (`ticket.closed` with its channel), but a chat event naming one would
write into a texter's or an emailer's conversation, and rename its patron."""
