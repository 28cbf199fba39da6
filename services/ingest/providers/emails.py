"""The parsed form of an inbound email, whichever provider delivered it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from services.ingest.providers.authenticity import SenderCheck
from services.ingest.providers.errors import InvalidField
from services.ingest.providers.files import AttachedFile
from shared.events import Automatic

if TYPE_CHECKING:  # automatic reads message ids with this module's helpers
    from services.ingest.providers.automatic import DeliveryReport

_BRACKETED = re.compile(r"<([^<>\s]+)>")
MAX_MESSAGE_ID = 255
"""Longest Message-ID kept (RFC 5322 lines are at most 998; the seen-keys column holds 255)."""


@dataclass(frozen=True, slots=True)
class EmailInbound:
    """One inbound email; sender, subject and text are student data."""

    message_id: str  # without angle brackets
    sender_email: str | None  # lower-cased; None when no sender address could be read
    sender_name: str | None
    recipient: str | None  # lower-cased
    subject: str
    text: str  # the new text only: quoted history and signature removed
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    ticket_tag: str | None = None  # the conversation id carried by "[refdesk #<id>]"
    received_at: datetime | None = None  # aware
    attachments: tuple[AttachedFile, ...] = ()  # described, never their content
    sender_check: SenderCheck = SenderCheck.UNKNOWN  # the receiving system's SPF/DKIM/DMARC
    automatic: Automatic | None = None  # sent by a mail system, not a person
    report: DeliveryReport | None = None  # a bounce's findings
    bulk: bool = False  # sent to many (a list, a newsletter): no automatic answer


def normalize_message_id(raw: str | None, *, field: str = "Message-ID") -> str:
    """A Message-ID without angle brackets or whitespace; InvalidField(field) if empty."""
    value = (raw or "").strip()
    match = _BRACKETED.search(value)
    if match:
        value = match.group(1)
    value = value.strip("<>")
    if not value or any(c.isspace() for c in value):
        raise InvalidField(field, "not a message id")
    if len(value) > MAX_MESSAGE_ID:
        raise InvalidField(field, f"longer than {MAX_MESSAGE_ID} characters")
    return value


def message_id_or_digest(raw: str | None, *, content: bytes, field: str = "Message-ID") -> str:
    """The email's Message-ID (`normalize_message_id`), or, when it has none a reply could
    name or it is malformed, one made from the message's own bytes: the same email sent again
    (a provider's retry) gets the same id, so it is still taken once. Such mail had been refused
    with 422, which a provider retries and then drops: the patron's email lost (an outside
    review)."""
    try:
        return normalize_message_id(raw, field=field)
    except InvalidField:
        return f"{hashlib.sha256(content).hexdigest()[:40]}@{DIGEST_DOMAIN}"


DIGEST_DOMAIN = "no-message-id.refdesk.invalid"
"""The domain of a Message-ID refdesk made for an email that came without one (RFC 2606's
.invalid: no mail system answers it)."""


def message_id_list(raw: str | None) -> tuple[str, ...]:
    """The ids in a References/In-Reply-To header, in order, without angle brackets."""
    value = raw or ""
    found = _BRACKETED.findall(value)
    if not found:
        found = [part.strip("<>") for part in re.split(r"[\s,]+", value)]
    return tuple(dict.fromkeys(part for part in found if part))
