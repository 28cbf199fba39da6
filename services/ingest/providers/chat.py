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
- `chat.message`: conversation_id, message_id, text, author ("patron" | "staff"),
  staff_id, sequence, channel, patron, department, campus
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

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.ingest.providers.contacts import normalize_email, normalize_phone
from services.ingest.providers.errors import (
    InvalidField,
    InvalidSignature,
    MissingSignature,
    ProviderError,
    StaleTimestamp,
    UnknownEventType,
)
from services.ingest.providers.text import CONVERSATION_ID_PATTERN
from shared.events import Channel, Patron, PatronRole

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
TOLERANCE = timedelta(minutes=5)  # what standardwebhooks.Webhook.verify enforces
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
    question: Text | None = Field(None, description="the pre-chat form's question")


class ChatMessageData(_Model):
    conversation_id: ConversationId
    message_id: Id
    text: Annotated[Text, StringConstraints(min_length=1)]
    author: Literal["patron", "staff"] = "patron"
    staff_id: Label | None = None
    sequence: int | None = Field(None, ge=0)
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
    timestamp: AwareDatetime
    data: ChatStartedData


class ChatMessage(_Model):
    type: Literal["chat.message"]
    timestamp: AwareDatetime
    data: ChatMessageData


class ChatTransferred(_Model):
    type: Literal["chat.transferred"]
    timestamp: AwareDatetime
    data: ChatTransferredData


class ChatEnded(_Model):
    type: Literal["chat.ended"]
    timestamp: AwareDatetime
    data: ChatEndedData


class TicketClosed(_Model):
    type: Literal["ticket.closed"]
    timestamp: AwareDatetime
    data: TicketClosedData


ChatEvent = Annotated[
    ChatStarted | ChatMessage | ChatTransferred | ChatEnded | TicketClosed,
    Field(discriminator="type"),
]
_EVENT: TypeAdapter[ChatEvent] = TypeAdapter(ChatEvent)


def _outside_tolerance(timestamp: str, now: datetime) -> bool:
    """Whether a webhook-timestamp is unparseable or more than TOLERANCE from `now`."""
    try:
        sent = datetime.fromtimestamp(float(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        return False
    return abs(now - sent) > TOLERANCE


def verify_chat_webhook(
    *, secret: str, headers: Mapping[str, str], body: bytes, json_body: bool = True
) -> None:
    """Raise unless `body` carries a valid, current Standard Webhooks signature.

    MissingSignature if a webhook-* header is absent, StaleTimestamp if webhook-timestamp
    is over 5 minutes from now, InvalidSignature otherwise. `secret` is `whsec_<base64>`;
    an empty or malformed secret is a configuration error and raises the library's error.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in SIGNATURE_HEADERS:
        if not lowered.get(name, "").strip():
            raise MissingSignature(name, "missing")
    webhook = Webhook(secret)
    try:
        webhook.verify(body, lowered, json_parse=json_body)
    except WebhookVerificationError as exc:
        if _outside_tolerance(lowered["webhook-timestamp"], datetime.now(UTC)):
            raise StaleTimestamp("webhook-timestamp", "outside the 5 minute window") from exc
        raise InvalidSignature("webhook-signature", "signature does not match") from exc
    except ValueError as exc:  # a malformed signature list, bad base64, or non-UTF-8 body
        raise InvalidSignature("webhook-signature", "malformed signature or body") from exc


def _path(loc: tuple[int | str, ...]) -> str:
    """A dotted field path ("data.patron.email") from a pydantic error location."""
    return ".".join(str(part) for part in loc) or "body"


def parse_chat_event(body: bytes) -> ChatEvent:
    """Parse a (verified) chat webhook body; UnknownEventType or InvalidField(path) if invalid."""
    try:
        return _EVENT.validate_json(body)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        kind, loc = error["type"], tuple(error["loc"])
        if kind == "json_invalid":
            raise InvalidField("body", "not valid JSON") from exc
        if kind == "union_tag_invalid":
            raise UnknownEventType("type", "unknown event type") from exc
        if kind == "union_tag_not_found":
            raise InvalidField("type", "missing") from exc
        # After the discriminator resolves, pydantic prefixes the location with the tag.
        raise InvalidField(_path(loc[1:] if loc else loc), error["msg"]) from exc
