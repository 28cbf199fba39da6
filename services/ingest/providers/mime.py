"""Parse a raw RFC 5322 message (a Mailgun `mime` route, or any MTA pipe) into an EmailInbound."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from services.ingest.providers.contacts import parse_address
from services.ingest.providers.emails import EmailInbound, message_id_list, normalize_message_id
from services.ingest.providers.errors import InvalidField, UnsupportedMedia
from services.ingest.providers.text import html_to_text, split_reply, ticket_tag

# Where the desk's own address is, most specific first (To may name someone else when Cc'd).
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To")


def _header(msg: Message, name: str) -> str | None:
    """A header's decoded value (RFC 2047 words decoded); InvalidField if it cannot be parsed."""
    try:
        value = msg.get(name)
        return None if value is None else str(value).strip()
    except (ValueError, IndexError, TypeError, AttributeError) as exc:
        raise InvalidField(name, "unparseable header") from exc


def _recipient(msg: Message) -> str | None:
    """The first well-formed address among the recipient headers, lower-cased."""
    for name in _RECIPIENT_HEADERS:
        for _, addr in getaddresses([_header(msg, name) or ""]):
            if "@" in addr:
                return addr.strip().lower()
    return None


def _date(value: str | None) -> datetime | None:
    """The Date header as an aware datetime; None if absent or unparseable; "-0000" as UTC."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _decode(part: Message) -> str:
    """A text part's content: declared charset, else UTF-8, else Windows-1252 with replacement."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    for charset in (part.get_content_charset() or "us-ascii", "utf-8"):
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("cp1252", errors="replace")


def _body_text(msg: EmailMessage) -> str:
    """The message's text: its text/plain body, else its text/html body made plain."""
    plain = msg.get_body(preferencelist=("plain",))
    if plain is not None and _decode(plain).strip():
        return _decode(plain)
    html = msg.get_body(preferencelist=("html",))
    if html is not None:
        return html_to_text(_decode(html))
    if plain is not None:
        return ""
    raise UnsupportedMedia("body", "no text/plain or text/html part")


def parse_mime(raw: bytes) -> EmailInbound:
    """Parse a raw message; InvalidField for a missing/bad From or Message-ID."""
    if not raw.strip():
        raise InvalidField("body", "empty message")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(msg, EmailMessage):  # policy.default always builds one; narrows the type
        raise InvalidField("body", "unparseable message")
    sender = _header(msg, "From")
    if not sender:
        raise InvalidField("From", "missing")
    name, email = parse_address(sender, field="From")
    subject = _header(msg, "Subject") or ""
    in_reply_to = message_id_list(_header(msg, "In-Reply-To"))
    return EmailInbound(
        message_id=normalize_message_id(_header(msg, "Message-ID"), field="Message-ID"),
        sender_email=email,
        sender_name=name,
        recipient=_recipient(msg),
        subject=subject,
        text=split_reply(_body_text(msg)),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_id_list(_header(msg, "References")),
        ticket_tag=ticket_tag(subject),
        received_at=_date(_header(msg, "Date")),
    )
