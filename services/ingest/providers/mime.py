"""Parse a raw RFC 5322 message (a Mailgun `mime` route, or any MTA pipe) into an EmailInbound."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from services.ingest.providers.authenticity import sender_check
from services.ingest.providers.automatic import RETURNED_PARTS, STATUS_PARTS, classify, is_bulk
from services.ingest.providers.contacts import parse_address, plain_from, sole_address
from services.ingest.providers.emails import EmailInbound, message_id_list, message_id_or_digest
from services.ingest.providers.errors import InvalidField, UnsupportedMedia
from services.ingest.providers.files import AttachedFile, file_name, listed, media_type
from services.ingest.providers.text import (
    html_to_text,
    is_reply,
    is_stub,
    split_reply,
    ticket_tag,
)

# Where the desk's own address is, most specific first (To may name someone else when Cc'd).
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To")
# Where the patron's address is: From, else who sent it on their behalf, else the envelope.
_SENDER_HEADERS = ("From", "Sender", "Return-Path")

MAX_CONTAINERS = 50
"""Most multipart and message/* parts one email may declare: Python's parser recurses into
each, and a thousand nested ones exhaust its stack. Real mail declares a handful."""
MAX_DEPTH = 20
"""Deepest nesting of parts accepted (a forwarded chain of forwards nests a few levels)."""
# A Content-Type naming a container type, at the start of any line (CR, LF or CRLF endings,
# folded continuation lines included).
_CONTAINER = re.compile(
    rb"(?i)(?:^|[\r\n])content-type:[ \t]*(?:(?:\r\n|\r|\n)[ \t]+)*(?:multipart|message)/"
)


def _raw(msg: Message, name: str) -> str | None:
    """The topmost such header's value as written (folds and encoded words kept; raw 8-bit
    bytes as the parser stores them, surrogates), or None when there is none."""
    return next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)


def _written(msg: Message, name: str) -> str | None:
    """A header's value as written, unfolded, raw 8-bit bytes decoded as `_header` reads them
    and RFC 2047 words left encoded: the structure an address header really has."""
    raw = _raw(msg, name)
    if raw is None:
        return None
    if _has_8bit(raw):
        raw = _decode_bytes(raw.encode("ascii", "surrogateescape"), _charsets(msg))
    return re.sub(r"\r?\n(?=[ \t])", "", raw)


def _header(msg: Message, name: str) -> str | None:
    """A header's decoded value (RFC 2047 words decoded); InvalidField if it cannot be parsed.

    Raw 8-bit bytes in a header (RFC 6532 UTF-8, or a legacy mailer's ISO-8859-1) are read as
    UTF-8 when they are, else in the message's declared charset, else Windows-1252.
    """
    raw = _raw(msg, name)
    if raw is None:
        return None
    try:
        if _has_8bit(raw):
            text = _decode_bytes(raw.encode("ascii", "surrogateescape"), _charsets(msg))
            return str(policy.default.header_factory(name, text)).strip()
        return str(msg.get(name)).strip()
    except (ValueError, IndexError, TypeError, AttributeError) as exc:
        raise InvalidField(name, "unparseable header") from exc


_ANGLE_ADDRESS = re.compile(r"^(.*)<([^<>@\s]+@[^<>\s]+)>\s*$", re.DOTALL)


def _lenient_header(msg: Message, name: str) -> str | None:
    """An address header the strict reading refuses (an RFC 2047 word in the display name
    that decodes to a line break: Python's parser will not make an address of it), split into
    name and address first, its name decoded word by word with control characters turned to
    spaces and quoted; None when even that fails."""
    raw = _raw(msg, name)
    if raw is None:
        return None
    ascii_raw = raw.encode("ascii", "surrogateescape").decode("ascii", "replace")
    angle = _ANGLE_ADDRESS.match(ascii_raw)  # the name may hold a colon: no group syntax
    encoded, address = (angle[1].strip(), angle[2].strip()) if angle else (ascii_raw, "")
    try:
        decoded = str(make_header(decode_header(encoded))) if encoded else ""
    except (ValueError, LookupError, UnicodeError):
        return None
    plain = " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in decoded).split())
    if not address:
        return plain or None
    quoted = plain.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>' if quoted else address


def _optional_header(msg: Message, name: str) -> str | None:
    """The topmost such header, or None when it is absent or cannot be parsed: a receiving
    system's verdict that cannot be read is no verdict, and never a reason to refuse mail."""
    try:
        return _header(msg, name)
    except InvalidField:
        return None


def _has_8bit(value: str) -> bool:
    """Whether a header kept undecoded 8-bit bytes (the parser stores them as surrogates)."""
    return any("\udc80" <= c <= "\udcff" for c in value)


def _charsets(msg: Message) -> list[str]:
    """Where to look for a legacy header's charset: the message's, then its first text part's."""
    found = [msg.get_content_charset()]
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            found.append(part.get_content_charset())
            break
    return [c for c in found if c]


SUPERSETS = {
    "shift_jis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "iso8859-1": "cp1252",
}
"""The Windows charset mail clients write under a legacy label (WHATWG's reading too): a
Japanese email labelled Shift_JIS holding ① or ②, a Chinese one labelled GB2312 holding 喆, a
Korean one labelled ks_c_5601-1987 holding 똠, an ISO-8859-1 one holding Outlook's curly
quotes, dashes and € had become mojibake or lost those characters (an outside review)."""
_C1 = re.compile(rb"[\x80-\x9f]")


def _candidates(labels: list[str], data: bytes) -> list[str]:
    """The charsets to try, in order, for bytes declared in `labels`: each label, its Windows
    superset after it (before it for ISO-8859-1 holding C1 bytes, which is Windows-1252's
    punctuation in real mail: never control characters)."""
    found: list[str] = []
    for label in labels:
        try:
            name = codecs.lookup(label).name
        except LookupError:
            continue
        superset = SUPERSETS.get(name)
        if superset == "cp1252" and _C1.search(data):
            found += [superset, label]
        else:
            found += [label, *([superset] if superset else [])]
    return found


def _decode_bytes(data: bytes, charsets: list[str]) -> str:
    """Text from bytes: UTF-8 if valid, else the first declared charset (or its Windows
    superset) that decodes them, else Windows-1252, else ISO-8859-1 (which decodes anything)."""
    for charset in ("utf-8", *_candidates(charsets, data), "cp1252"):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


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


def _received(msg: Message) -> datetime | None:
    """When the desk's mail system received the message: the date of the topmost `Received`
    line (the receiving server writes it above every line the sender could). The `Date`
    header is the sender's own claim, and is not read."""
    received = msg.get_all("Received") or []
    if not received:
        return None
    _, _, stamp = str(received[0]).rpartition(";")
    return _date(stamp.strip())


def _decode(part: Message) -> str:
    """A text part's content: declared charset (or its Windows superset, `SUPERSETS`), else
    UTF-8, else Windows-1252 with replacement."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    for charset in (*_candidates([part.get_content_charset() or "us-ascii"], payload), "utf-8"):
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError, UnicodeError):
            continue
    return payload.decode("cp1252", errors="replace")


def _bodies(msg: EmailMessage) -> tuple[Message | None, Message | None]:
    """The message's text/plain and text/html body parts, if it has them."""
    return msg.get_body(preferencelist=("plain",)), msg.get_body(preferencelist=("html",))


def _body_text(
    plain: Message | None, html: Message | None, subject: str | None, *, reply: bool
) -> str:
    """The message's text: its text/plain body, else (or when that is a stub pointing at the
    HTML, `is_stub`) its text/html body made plain."""
    text = _decode(plain) if plain is not None else ""
    if text.strip() and not (html is not None and is_stub(text)):
        return text
    if html is not None:
        return html_to_text(_decode(html), subject=subject, reply=reply)
    return ""


FORWARD_MARKER = "---------- Forwarded message ---------"
"""Gmail's marker: ahead of a forwarded attachment's text, so it reads as an inline forward
does (`text.split_reply` keeps what follows it)."""
FORWARD_HEADERS = ("From", "Date", "Subject", "To")


def _leaves(msg: Message) -> Iterator[Message]:
    """The message's parts that are not multipart containers, in order, without recursion (a
    forwarded message is one part: its own parts are not walked)."""
    stack: list[Message] = [msg]
    while stack:
        part = stack.pop()
        payload = part.get_payload()
        if part.get_content_maintype() == "multipart" and isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
        else:
            yield part


def _forwarded(msg: Message) -> list[str]:
    """The text of each message forwarded as an attachment (message/rfc822: Outlook's "Forward
    as attachment", and several other clients'), as an inline forward shows it: a marker, its
    From, Date, Subject and To, then its body. An instructor forwarding a student's email this
    way had the student's words shown as "message 1.eml" and read by nobody, the crisis net
    included (an outside review); only the forwarding message's own parts are read, not a
    forward inside a forward."""
    found: list[str] = []
    for part in _leaves(msg):
        payload = part.get_payload()
        if part.get_content_type() == "message/rfc822" and isinstance(payload, list):
            inner = payload[0] if payload else None
            if not isinstance(inner, EmailMessage):
                continue
            lines = [FORWARD_MARKER]
            for name in FORWARD_HEADERS:
                value = _optional_header(inner, name)
                if value:
                    lines.append(f"{name}: {value}")
            subject = _optional_header(inner, "Subject")
            body = _body_text(*_bodies(inner), subject, reply=False).strip()
            found.append("\n".join(lines) + "\n\n" + body)
    return found


def _size(part: Message) -> int | None:
    """A part's content length in bytes as decoded (a forwarded message: as it is written)."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return len(payload)
    try:
        return len(part.as_bytes())
    except (ValueError, TypeError, IndexError, AttributeError, UnicodeError, LookupError):
        return None


def _is_attachment(part: Message) -> bool:
    """A file rather than a body: declared an attachment, named, or not text (an inline image)."""
    try:
        named = bool(part.get_filename())
    except (ValueError, TypeError, IndexError, AttributeError):
        named = False
    return (
        part.get_content_disposition() == "attachment"
        or named
        or part.get_content_maintype() != "text"
    )


def _attachments(msg: Message, bodies: tuple[Message | None, ...]) -> tuple[AttachedFile, ...]:
    """The message's files, in order: every part that is not a container or one of its text
    bodies and is an attachment (`_is_attachment`); a forwarded message counts as one file."""
    found: list[AttachedFile] = []
    for part in _leaves(msg):
        if any(part is body for body in bodies) or not _is_attachment(part):
            continue
        content_type = part.get_content_type()
        try:
            raw_name = part.get_filename()
        except (ValueError, TypeError, IndexError, AttributeError):
            raw_name = None
        found.append(
            AttachedFile(
                name=file_name(raw_name, len(found) + 1, content_type),
                size=_size(part),
                content_type=media_type(content_type),
            )
        )
    return listed(found)


def _sender(msg: Message) -> tuple[str | None, str | None, bool]:
    """(display name, address, plain) of the patron from the first sender header that holds one
    address a reply can go to; the address is None when none does, so the message still reaches
    the desk (a relay that is refused retries it, then drops it).

    A header counts only when its value as written names that one address (`sole_address`):
    the email policy folds `victim@my.tccd.edu <attacker@evil.example>` into the victim's
    address. `plain` is whether the From names one sender plainly (`plain_from`)."""
    names: list[str] = []
    present = False
    plain = True
    for header in _SENDER_HEADERS:
        try:
            value = _header(msg, header)
        except InvalidField:  # e.g. an encoded line break in the name: read it leniently
            value = _lenient_header(msg, header)
        if not value:
            continue
        present = True
        try:
            name, address = parse_address(value, field=header)
        except InvalidField:
            name, address = None, None
        raw = _written(msg, header) or ""
        if header == "From":
            plain = plain_from(raw, name, address)
        if address is None or sole_address(raw) != address:
            names += [n.strip() for n, _ in getaddresses([value])[:1] if n.strip()]
            continue
        return name or (names[0] if names else None), address, plain
    if not present:
        raise InvalidField("From", "missing")
    return (names[0] if names else None), None, plain


def _report_texts(msg: Message, body: str) -> tuple[str, str]:
    """A delivery report's machine-readable part and the returned message's headers, as text;
    the body's text for either that is missing (a bounce written as plain text)."""
    status: list[str] = []
    returned: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        payload = part.get_payload()
        if kind in STATUS_PARTS and isinstance(payload, list):
            status += [str(block) for block in payload if isinstance(block, Message)]
        elif kind == "message/rfc822" and isinstance(payload, list):
            first = payload[0] if payload else None
            if isinstance(first, Message):
                returned.append("".join(f"{k}: {v}\n" for k, v in first.raw_items()))
        elif kind in RETURNED_PARTS:
            returned.append(_decode(part))
    return "\n".join(status) or body, "\n".join(returned) or body


def _depth(msg: Message) -> int:
    """How deep parts nest in a parsed message (1: a single part), without recursion."""
    deepest, stack = 0, [(msg, 1)]
    while stack:
        part, level = stack.pop()
        deepest = max(deepest, level)
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((child, level + 1) for child in payload if isinstance(child, Message))
    return deepest


def parse_mime(raw: bytes) -> EmailInbound:
    """Parse a raw message; InvalidField for a missing From or a bad Message-ID, UnsupportedMedia
    for a message with neither a text body nor an attachment."""
    if not raw.strip():
        raise InvalidField("body", "empty message")
    if len(_CONTAINER.findall(raw)) > MAX_CONTAINERS:
        raise InvalidField("body", f"more than {MAX_CONTAINERS} multipart or message parts")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except RecursionError as exc:  # a nesting the count above did not see
        raise InvalidField("body", "parts nested too deeply") from exc
    if not isinstance(msg, EmailMessage):  # policy.default always builds one; narrows the type
        raise InvalidField("body", "unparseable message")
    if _depth(msg) > MAX_DEPTH:
        raise InvalidField("body", f"parts nested more than {MAX_DEPTH} deep")
    name, email, plain = _sender(msg)
    subject = _header(msg, "Subject") or ""
    in_reply_to = message_id_list(_header(msg, "In-Reply-To"))
    refs = message_id_list(_header(msg, "References"))
    bodies = _bodies(msg)
    attachments = _attachments(msg, bodies)
    if bodies == (None, None) and not attachments:
        raise UnsupportedMedia("body", "no text/plain or text/html part and no attachment")
    reply = is_reply(subject, answers=bool(in_reply_to or refs))
    body = _body_text(*bodies, subject, reply=reply)
    automatic, report = classify(
        lambda name: _optional_header(msg, name),
        content_type=msg.get_content_type(),
        report_type=str(msg.get_param("report-type") or "").lower() or None,
        report_texts=lambda: _report_texts(msg, body),
    )
    if report is not None:  # the report's own parts are not files anyone sent
        report_parts = STATUS_PARTS | RETURNED_PARTS
        attachments = tuple(a for a in attachments if a.content_type not in report_parts)
    else:  # a returned message is a report's; any other attached one is forwarded to the desk
        body = "\n\n".join([body.rstrip(), *_forwarded(msg)]).strip() or body
    return EmailInbound(
        message_id=message_id_or_digest(_optional_header(msg, "Message-ID"), content=raw),
        sender_email=email,
        sender_name=name,
        recipient=_recipient(msg),
        subject=subject,
        text=split_reply(body, subject=subject, reply=reply),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=refs,
        ticket_tag=ticket_tag(subject),
        received_at=_received(msg),
        attachments=attachments,
        sender_check=sender_check(
            authentication_results=_optional_header(msg, "Authentication-Results"),
            spf=_optional_header(msg, "X-Mailgun-Spf") or _optional_header(msg, "Received-SPF"),
            dkim=_optional_header(msg, "X-Mailgun-Dkim-Check-Result"),
            sender=email,
            plain_from=plain,
        ),
        automatic=automatic,
        report=report,
        bulk=is_bulk(lambda name: _optional_header(msg, name)),
    )
