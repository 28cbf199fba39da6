"""Mailgun inbound routes (forward() to a URL, parsed form): verify the signature, parse the form.

Signature (https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks):
hex HMAC-SHA256 of `timestamp + token` keyed with the HTTP webhook signing key. It does not
cover the rest of the form, so replay protection rests on two checks: the timestamp window
here, and the caller's token store (a token seen before -> ReplayedToken), which must keep
tokens at least `tolerance_s` and should record a token only once the message is accepted.

Retries: Mailgun retries a route POST that is not answered 200 or 406 after 10 min, 15 min,
30 min, ... for 8 hours, reportedly resending the original signature block; with the default
300 s tolerance every retry is stale. Answer 406 to refusals that cannot succeed on a retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import getaddresses, parseaddr
from typing import Protocol, runtime_checkable

from services.ingest.providers.authenticity import sender_check
from services.ingest.providers.automatic import (
    MAX_REPORT_CHARS,
    RETURNED_PARTS,
    STATUS_PARTS,
    classify,
    content_type,
    is_bulk,
)
from services.ingest.providers.contacts import (
    parse_address,
    plain_from,
    sole_address,
    written_addresses,
)
from services.ingest.providers.emails import EmailInbound, message_id_list, message_id_or_digest
from services.ingest.providers.errors import (
    InvalidField,
    InvalidSignature,
    MissingSignature,
    StaleTimestamp,
)
from services.ingest.providers.files import AttachedFile, file_name, listed, media_type
from services.ingest.providers.text import (
    html_to_text,
    is_forward,
    is_reply,
    is_stub,
    split_reply,
    ticket_tag,
)
from shared.limits import json_too_deep

MAX_TOKEN = 255
"""Longest token kept (Mailgun's are 50 characters); the token store's key column."""
_ATTACHMENT = re.compile(r"attachment-([0-9]{1,6})")


@runtime_checkable
class UploadedFile(Protocol):
    """A multipart file part as the web framework spooled it (Starlette's UploadFile)."""

    @property
    def filename(self) -> str | None: ...

    @property
    def size(self) -> int | None: ...

    @property
    def content_type(self) -> str | None: ...


FUTURE_SKEW_S = 300.0
"""How far ahead of ingest's clock a Mailgun timestamp may be (clocks differ by seconds)."""


def verify_mailgun(
    *,
    signing_key: str,
    timestamp: str | None,
    token: str | None,
    signature: str | None,
    now: float,
    tolerance_s: float = 300,
) -> None:
    """Raise unless `signature` is Mailgun's for timestamp+token and the timestamp is recent.

    MissingSignature if any of the three is absent, InvalidSignature if the HMAC does not
    match (checked first, so a forgery is never reported as merely stale), StaleTimestamp
    if the timestamp is more than `tolerance_s` before `now` (Mailgun's retries keep it) or
    more than FUTURE_SKEW_S after it (no retry is stamped ahead: only a clock is). Token
    replay is the caller's check (see the module docstring).
    """
    if not timestamp:
        raise MissingSignature("timestamp", "missing")
    if not token:
        raise MissingSignature("token", "missing")
    if not signature:
        raise MissingSignature("signature", "missing")
    if len(token) > MAX_TOKEN:
        raise InvalidSignature("token", f"longer than {MAX_TOKEN} characters")
    expected = hmac.new(
        signing_key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode()):
        raise InvalidSignature("signature", "signature does not match")
    try:
        sent = float(timestamp)
    except ValueError as exc:
        raise InvalidSignature("timestamp", "not a Unix time") from exc
    if now - sent > tolerance_s or sent - now > min(tolerance_s, FUTURE_SKEW_S):
        raise StaleTimestamp("timestamp", f"outside the {tolerance_s:g} s window")


def _fields(form: Mapping[str, object]) -> dict[str, str]:
    """The form's text fields keyed by lower-cased name (Mailgun mixes "Message-Id", "sender")."""
    out: dict[str, str] = {}
    for key, value in form.items():
        if isinstance(value, str):
            out.setdefault(key.lower(), value)
    raw_headers = out.get("message-headers")
    if raw_headers:
        if json_too_deep(raw_headers.encode("utf-8", "surrogatepass")):
            raise InvalidField("message-headers", "nested too deeply")
        try:
            headers = json.loads(raw_headers)
        except ValueError as exc:
            raise InvalidField("message-headers", "not JSON") from exc
        if not isinstance(headers, list):
            raise InvalidField("message-headers", "not a list of [name, value] pairs")
        for pair in headers:
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair):
                out.setdefault(pair[0].lower(), pair[1])
    for key in ENCODED_WORD_FIELDS:
        if "=?" in out.get(key, ""):
            out[key] = decoded_words(out[key]) if key == "subject" else _decoded_name(out[key])
    return out


def _decoded_name(value: str) -> str:
    """An address header with its display name's encoded words decoded, the name quoted (a
    decoded "Muñoz, José" must not read as two addresses); as it is unless it names one
    address as written (parseaddr keeps the first of two, and the From would look plain)."""
    if len(written_addresses(value)) != 1:
        return value
    name, address = parseaddr(value)
    if "@" not in address:
        return value
    name = decoded_words(name).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{name}" <{address}>' if name else address


ENCODED_WORD_FIELDS = ("from", "sender", "subject")
"""Fields that may arrive as the raw header, RFC 2047 encoded words and all (from
message-headers, or a form field a forwarder did not decode): the console had shown
"=?iso-8859-1?Q?Jos=E9_Mu=F1oz?=" where the MIME route shows "José Muñoz"."""


DIGESTED_FIELDS = ("from", "sender", "recipient", "subject", "date", "body-plain", "body-html")
"""What an email without a Message-ID is known by (never the webhook's signature fields: a
retry is signed anew)."""


def _content_digest(fields: Mapping[str, str]) -> bytes:
    """The form's message fields, as bytes an id is made from (`message_id_or_digest`)."""
    return "\x00".join(f"{name}={fields.get(name, '')}" for name in DIGESTED_FIELDS).encode(
        "utf-8", "surrogatepass"
    )


def decoded_words(value: str) -> str:
    """A header value with its RFC 2047 encoded words decoded (as it is when they cannot be)."""
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return value


def _new_text(fields: Mapping[str, str], subject: str | None, *, reply: bool) -> str:
    """Mailgun's stripped-text if it left anything (and body-plain stripped here holds no more
    of the patron's words), else body-plain (or body-html) stripped here;
    a forward is read from body-plain (Mailgun strips the forwarded message as history), and so
    is an email that answers nothing (`reply` false: Mailgun strips what looks like history in
    it too, such as a call number quoted with ">" or "my professor wrote:")."""
    plain = fields.get("body-plain", "")
    stub = is_stub(plain) and bool(fields.get("body-html"))
    if stub:  # Mailgun's stripped-text is read from the stub too
        fields = {**fields, "stripped-text": ""}
    if (stub or not plain.strip()) and fields.get("body-html"):
        plain = html_to_text(fields["body-html"], subject=subject, reply=reply)
    ours = split_reply(plain, subject=subject, reply=reply)
    if reply and not is_forward(subject, plain):
        stripped = split_reply(fields.get("stripped-text", ""))
        # Mailgun's, unless ours holds it and more: Mailgun also strips what the patron wrote
        # after a signature or a phone's footer (a P.S.), and a crisis written there was lost
        if stripped and not (len(ours) > len(stripped) and _words(stripped) in _words(ours)):
            return stripped
    return ours


def _words(text: str) -> str:
    return " ".join(text.split())


def _received_at(raw: str | None) -> datetime | None:
    """Mailgun's timestamp (when it posted, so close to receipt) as an aware datetime."""
    if not raw:
        return None
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidField("timestamp", "not a Unix time") from exc


def _sender(fields: Mapping[str, str]) -> tuple[str | None, str | None, bool]:
    """(display name, address, plain) of the patron: the From header ("from"), else the SMTP
    envelope ("sender", which forwarders and mailing lists rewrite). When neither holds one
    address a reply can go to, or both are empty, the address is None: the message is still
    accepted, since refusing it would make Mailgun retry for 8 hours and then drop it. `plain`
    is whether the From names one sender plainly (`plain_from`), as the MIME route reads it."""
    raw = {key: fields.get(key, "").strip() for key in ("from", "sender")}
    names: list[str] = []
    plain = True
    for key, value in raw.items():
        if not value:
            continue
        try:
            name, address = parse_address(value, field=key)
        except InvalidField:
            name, address = None, None
        if key == "from":
            plain = plain_from(value, name, address)
        if address is None or sole_address(value) != address:
            names += [n.strip() for n, _ in getaddresses([value])[:1] if n.strip()]
            continue
        return name or (names[0] if names else None), address, plain
    return (names[0] if names else None), None, plain


def _recipient(fields: Mapping[str, str]) -> str | None:
    """The desk's address the message was sent to (the first of the envelope's), if readable."""
    first = fields.get("recipient", "").split(",")[0].strip()
    try:
        return parse_address(first, field="recipient")[1] if first else None
    except InvalidField:
        return None


def _attachments(form: Mapping[str, object]) -> tuple[AttachedFile, ...]:
    """The files Mailgun posted as attachment-1 .. attachment-N (inline images included),
    described by name, size and type; their content is never read."""
    found: list[tuple[int, UploadedFile]] = []
    for key, value in form.items():
        match = _ATTACHMENT.fullmatch(key.lower())
        if match and not isinstance(value, str) and isinstance(value, UploadedFile):
            found.append((int(match.group(1)), value))
    found.sort(key=lambda item: item[0])
    return listed(
        AttachedFile(
            name=file_name(part.filename, number, part.content_type),
            size=part.size,
            content_type=media_type(part.content_type),
        )
        for number, part in found
    )


def _report_texts(form: Mapping[str, object], fields: Mapping[str, str]) -> tuple[str, str]:
    """A bounce's machine-readable report and returned headers: the posted file parts of those
    types (the first MAX_REPORT_CHARS of each), else the whole body-plain, where a parsed
    report's text parts may have been joined."""
    status: list[str] = []
    returned: list[str] = []
    for key, value in form.items():
        if not _ATTACHMENT.fullmatch(key.lower()) or not isinstance(value, UploadedFile):
            continue
        kind = media_type(value.content_type)
        if kind not in STATUS_PARTS and kind not in RETURNED_PARTS:
            continue
        handle = getattr(value, "file", None)
        if handle is None:
            continue
        handle.seek(0)
        text = handle.read(MAX_REPORT_CHARS).decode("utf-8", "replace")
        handle.seek(0)
        (status if kind in STATUS_PARTS else returned).append(text)
    body = fields.get("body-plain", "")
    return "\n".join(status) or body, "\n".join(returned) or body


def parse_mailgun_form(form: Mapping[str, object]) -> EmailInbound:
    """Parse a (verified) Mailgun route POST; InvalidField names the missing or bad field.

    Headers absent as fields are looked up in "message-headers" (the first of a repeated
    header: the topmost, so Mailgun's own `X-Mailgun-Spf` and `X-Mailgun-Dkim-Check-Result`
    before any the sender wrote). File parts (multipart posts) are described as attachments.
    """
    fields = _fields(form)
    name, email, plain = _sender(fields)
    subject = fields.get("subject", "").strip()
    in_reply_to = message_id_list(fields.get("in-reply-to"))
    refs = message_id_list(fields.get("references"))
    kind, report_type = content_type(fields.get("content-type"))
    automatic, report = classify(
        lambda name: fields.get(name.lower()),
        content_type=kind,
        report_type=report_type,
        report_texts=lambda: _report_texts(form, fields),
    )
    attachments = _attachments(form)
    if report is not None:  # the report's own parts are not files anyone sent
        report_parts = STATUS_PARTS | RETURNED_PARTS
        attachments = tuple(a for a in attachments if a.content_type not in report_parts)
    return EmailInbound(
        message_id=message_id_or_digest(
            fields.get("message-id"), content=_content_digest(fields), field="Message-Id"
        ),
        sender_email=email,
        sender_name=name,
        recipient=_recipient(fields),
        subject=subject,
        text=_new_text(fields, subject, reply=is_reply(subject, answers=bool(in_reply_to or refs))),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=refs,
        ticket_tag=ticket_tag(subject),
        received_at=_received_at(fields.get("timestamp")),
        attachments=attachments,
        sender_check=sender_check(
            authentication_results=fields.get("authentication-results"),
            spf=fields.get("x-mailgun-spf"),
            dkim=fields.get("x-mailgun-dkim-check-result"),
            sender=email,
            plain_from=plain,
        ),
        automatic=automatic,
        report=report,
        bulk=is_bulk(lambda name: fields.get(name.lower())),
    )
