"""Twilio Messaging webhooks: verify X-Twilio-Signature, parse an inbound SMS/MMS and a status
callback (what became of a text refdesk sent).

Signature scheme (https://www.twilio.com/docs/usage/webhooks/webhooks-security), as
twilio-python's RequestValidator computes it: the full webhook URL (query included),
then for each POST parameter name in sorted order, each of its distinct values in
sorted order, as name+value with no separators; HMAC-SHA1 keyed with the Auth Token,
base64. Twilio is inconsistent about explicit default ports, so the URL is tried both
with and without its port. JSON-bodied webhooks (`bodySHA256`) are not handled here:
Messaging webhooks are form-encoded.

SHA-256: when a Webhooks Configuration rule matches the URL and its Setting signs with a
SharedKey, Twilio signs the same string with that SharedKey's secret (not the Auth Token) and
the Setting's algorithm (HMAC_SHA256), and adds `X-Twilio-Webhooks-Signature-Settings:
key=<SharedKey id>,algorithm=HMAC_SHA256` (twilio-python's `get_signature_algorithm` and
RequestValidator, twilio-node's WebhookSignatureValidation example). Without that header
the signature is always the Auth Token's HMAC-SHA1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

from services.ingest.providers.contacts import normalize_sms_sender
from services.ingest.providers.errors import InvalidField, InvalidSignature, MissingSignature
from shared.events import SmsStatusReported

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
MAX_MEDIA = 10
MAX_SMS_BODY = 1600
"""Twilio's limit on a message body (characters): it concatenates segments up to this."""
_MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}


class MultiItems(Protocol):
    """A multi-valued form such as Starlette's FormData."""

    def multi_items(self) -> Sequence[tuple[str, object]]: ...


TwilioParams = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, object]] | MultiItems


@dataclass(frozen=True, slots=True)
class SmsInbound:
    """One inbound SMS/MMS as Twilio reported it; phone numbers and body are student data."""

    message_sid: str
    account_sid: str | None
    from_e164: str
    to: str
    body: str
    num_media: int
    media_urls: tuple[str, ...] = ()
    media_types: tuple[str, ...] = ()
    from_city: str | None = None
    from_state: str | None = None


def _multi(params: TwilioParams) -> dict[str, list[str]]:
    """Every parameter's values, in the order received."""
    if hasattr(params, "multi_items"):
        pairs: Iterable[tuple[str, object]] = params.multi_items()
    elif isinstance(params, Mapping):
        pairs = (
            (key, v)
            for key, value in params.items()
            for v in (value if isinstance(value, list | tuple) else [value])
        )
    else:
        pairs = params
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        if not isinstance(value, str):
            raise InvalidField(key, "not a text field")
        out.setdefault(key, []).append(value)
    return out


def _url_variants(url: str) -> tuple[str, str]:
    """The URL without and with its port, as twilio-python's remove_port/add_port build them."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidSignature("url", "the URL's port is not a number") from exc
    host = parts.netloc.rsplit(":", 1)[0] if port else parts.netloc
    default = 443 if parts.scheme == "https" else 80
    with_port = parts.netloc if port else f"{parts.netloc}:{default}"
    return (
        SplitResult(parts.scheme, host, parts.path, parts.query, parts.fragment).geturl(),
        SplitResult(parts.scheme, with_port, parts.path, parts.query, parts.fragment).geturl(),
    )


def compute_twilio_signature(
    *, token: str, url: str, params: TwilioParams, algorithm: str = "HMAC_SHA1"
) -> str:
    """Twilio's base64 HMAC of the URL followed by the sorted parameters."""
    digest = _HASHES.get(algorithm.upper())
    if digest is None:
        raise InvalidSignature("X-Twilio-Webhooks-Signature-Settings", "unsupported algorithm")
    signed = url
    for key, values in sorted(_multi(params).items()):
        signed += "".join(key + value for value in sorted(set(values)))
    mac = hmac.new(token.encode("utf-8"), signed.encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named by X-Twilio-Webhooks-Signature-Settings (absent: HMAC_SHA1)."""
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip()
    return "HMAC_SHA1"


def signing_secret(
    settings_header: str | None, *, auth_token: str, shared_key: str | None
) -> tuple[str, str]:
    """(key, algorithm) a request was signed with: the Auth Token and HMAC_SHA1, or, when it
    carries X-Twilio-Webhooks-Signature-Settings, the SharedKey secret and the algorithm the
    header names. InvalidSignature if the header comes and no SharedKey is configured."""
    if not (settings_header or "").strip():
        return auth_token, "HMAC_SHA1"
    if not shared_key:
        raise InvalidSignature(SETTINGS_HEADER, "signed with a SharedKey, and none is configured")
    return shared_key, signature_algorithm(settings_header)


def verify_twilio_signature(
    *,
    auth_token: str,
    url: str,
    params: TwilioParams,
    signature: str | None,
    algorithm: str = "HMAC_SHA1",
    fragment: str = "",
) -> None:
    """Raise MissingSignature/InvalidSignature unless `signature` is Twilio's for url+params.

    `url` is the URL Twilio requested (as configured in Twilio, behind any proxy), query
    string included; `auth_token` is the Auth Token, or the SharedKey secret when the
    request names an algorithm in X-Twilio-Webhooks-Signature-Settings. `fragment` is the
    connection overrides configured on the URL (`rp=all&rc=3`): a browser never sends a
    fragment, so it is not in the request, and the URL is tried without and with it.
    """
    if not signature:
        raise MissingSignature(SIGNATURE_HEADER, "no signature header")
    given = signature.strip().encode("utf-8")
    matched = False
    urls = [url, f"{url}#{fragment}"] if fragment else [url]
    for candidate in (variant for one in urls for variant in _url_variants(one)):
        expected = compute_twilio_signature(
            token=auth_token, url=candidate, params=params, algorithm=algorithm
        )
        matched |= hmac.compare_digest(expected.encode("ascii"), given)
    if not matched:
        raise InvalidSignature(SIGNATURE_HEADER, "signature does not match")


def _one(fields: Mapping[str, list[str]], name: str) -> str | None:
    """The single value of `name`, None if absent; InvalidField if repeated."""
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidField(name, "repeated")
    return values[0]


def _required(fields: Mapping[str, list[str]], name: str) -> str:
    """The single non-blank value of `name`; InvalidField if missing."""
    value = _one(fields, name)
    if value is None or not value.strip():
        raise InvalidField(name, "missing")
    return value.strip()


def _media(fields: Mapping[str, list[str]], count: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The MediaUrlN and MediaContentTypeN values for N < count."""
    urls, types = [], []
    for i in range(count):
        url = _required(fields, f"MediaUrl{i}")
        if not url.startswith("https://"):
            raise InvalidField(f"MediaUrl{i}", "not an https URL")
        urls.append(url)
        types.append((_one(fields, f"MediaContentType{i}") or "").strip())
    return tuple(urls), tuple(types)


def _message_sid(fields: Mapping[str, list[str]], *, legacy: str) -> str:
    """The message's SID (`MessageSid`, else the older name Twilio also sends); InvalidField
    names `MessageSid` when it is missing or not a Twilio message SID."""
    sid = (_one(fields, "MessageSid") or _one(fields, legacy) or "").strip()
    if not sid:
        raise InvalidField("MessageSid", "missing")
    if not _MESSAGE_SID.fullmatch(sid):
        raise InvalidField("MessageSid", "not a Twilio message SID")
    return sid


def parse_twilio_sms(params: TwilioParams) -> SmsInbound:
    """Parse a (verified) Twilio Messaging webhook; InvalidField names the bad parameter."""
    fields = _multi(params)
    sid = _message_sid(fields, legacy="SmsMessageSid")
    sender = _required(fields, "From")
    from_e164 = normalize_sms_sender(sender, field="From")
    to = _required(fields, "To")
    raw_count = (_one(fields, "NumMedia") or "0").strip()
    # ASCII digits only: str.isdigit() is true of "²", which int() refuses (a 500)
    if not _DIGITS.fullmatch(raw_count) or int(raw_count) > MAX_MEDIA:
        raise InvalidField("NumMedia", f"not an integer from 0 to {MAX_MEDIA}")
    urls, types = _media(fields, int(raw_count))
    return SmsInbound(
        message_sid=sid,
        account_sid=(_one(fields, "AccountSid") or "").strip() or None,
        from_e164=from_e164,
        to=to,
        body=(_one(fields, "Body") or "").strip(),
        num_media=int(raw_count),
        media_urls=urls,
        media_types=types,
        from_city=(_one(fields, "FromCity") or "").strip() or None,
        from_state=(_one(fields, "FromState") or "").strip() or None,
    )


_STATUS_WORD = re.compile(r"[a-z_]{1,32}")
_DIGITS = re.compile(r"[0-9]{1,12}")


def parse_twilio_status(params: TwilioParams, *, now: datetime) -> SmsStatusReported:
    """Parse a (verified) Twilio status callback for a text refdesk sent: its SID, status and
    error code only (the callback's To and From are the patron's number and the desk's, and are
    not kept); InvalidField names the bad parameter."""
    fields = _multi(params)
    sid = _message_sid(fields, legacy="SmsSid")
    status = (_one(fields, "MessageStatus") or _one(fields, "SmsStatus") or "").strip().lower()
    if not status:
        raise InvalidField("MessageStatus", "missing")
    if not _STATUS_WORD.fullmatch(status):
        raise InvalidField("MessageStatus", "not a Twilio message status")
    code = (_one(fields, "ErrorCode") or "").strip()
    if code and not (_DIGITS.fullmatch(code) and len(code) <= 9):
        raise InvalidField("ErrorCode", "not a Twilio error code")
    return SmsStatusReported(
        provider_id=sid, status=status, error_code=int(code) if code else None, reported_at=now
    )
