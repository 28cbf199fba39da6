"""Provider webhooks as ingest expects them, signed with the REFDESK_* secrets.

One replay item (a JSON object, one per line in a replay file) becomes one signed request:

- `{"kind": "sms", "from": "+18175550123", "body": "...", "sid": optional}`: Twilio form,
  X-Twilio-Signature over REFDESK_PUBLIC_BASE_URL + path.
- `{"kind": "email", "from": "Ana <ana@x.edu>", "subject": "...", "text": "...",
  "message_id": optional, "date": optional ISO 8601}`: without `date`, a Mailgun form (HMAC of
  timestamp + token; Mailgun's timestamp must be current, so it is now); with `date`, a raw
  RFC 5322 message received then (its topmost Received line and its Date header say so, as
  the desk's mail system would write them; ingest believes such a time back 7 days),
  Standard Webhooks signed.
- `{"kind": "chat", "type": "chat.message", "timestamp": optional ISO 8601, "data": {...}}`:
  a chat platform event, Standard Webhooks signed; `timestamp` defaults to now.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from standardwebhooks import Webhook

KINDS = ("sms", "email", "chat")


@dataclass(frozen=True)
class Secrets:
    """What ingest verifies signatures with, and the public URL Twilio signs."""

    twilio_auth_token: str
    mailgun_signing_key: str
    webhook_secret: str
    public_base_url: str

    @classmethod
    def from_env(cls) -> Secrets:
        """The secrets ingest would use here: REFDESK_* variables, else its development defaults."""
        from services.ingest.settings import IngestSettings

        s = IngestSettings()
        return cls(*s.secrets(), s.public_base_url)


@dataclass
class SignedRequest:
    """One POST to ingest."""

    path: str
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    channel: str = ""


class InvalidItem(ValueError):
    """A replay item that cannot become a webhook; the message names the field."""


def build(item: dict[str, Any], secrets: Secrets, *, now: float | None = None) -> SignedRequest:
    """The signed request for one replay item."""
    kind = item.get("kind")
    if kind == "sms":
        return sms(item, secrets)
    if kind == "email":
        return mime(item, secrets, now=now) if item.get("date") else mailgun(item, secrets, now=now)
    if kind == "chat":
        return chat(item, secrets, now=now)
    raise InvalidItem(f"kind: must be one of {', '.join(KINDS)}, not {kind!r}")


def _need(item: dict[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidItem(f"{name}: a non-empty string is required")
    return value


def sms(item: dict[str, Any], secrets: Secrets) -> SignedRequest:
    """A Twilio inbound-message webhook."""
    path = "/webhooks/sms"
    form = {
        "MessageSid": item.get("sid") or f"SM{uuid.uuid4().hex}",
        "AccountSid": "AC" + "0" * 32,
        "From": _need(item, "from"),
        "To": item.get("to") or "+18175550100",
        "Body": _need(item, "body"),
        "NumMedia": "0",
    }
    url = secrets.public_base_url.rstrip("/") + path
    signature = twilio_signature(secrets.twilio_auth_token, url, form)
    return SignedRequest(
        path,
        urlencode(form).encode(),
        channel="sms",
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def mailgun(item: dict[str, Any], secrets: Secrets, *, now: float | None = None) -> SignedRequest:
    """A Mailgun inbound-route post, signed with the HTTP webhook signing key."""
    ts = str(int(now if now is not None else time.time()))
    token = uuid.uuid4().hex
    sender = _need(item, "from")
    text = _need(item, "text")
    message_id = item.get("message_id") or f"{uuid.uuid4().hex}@replay.refdesk"
    form = {
        "sender": _address(sender),
        "from": sender,
        "recipient": "askdesk@tccd.edu",
        "subject": item.get("subject") or "",
        "body-plain": text,
        "stripped-text": text,
        "Message-Id": f"<{message_id.strip('<>')}>",
        "timestamp": ts,
        "token": token,
        "signature": hmac.new(
            secrets.mailgun_signing_key.encode(), (ts + token).encode(), hashlib.sha256
        ).hexdigest(),
    }
    return SignedRequest(
        "/webhooks/email",
        urlencode(form).encode(),
        channel="email",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def mime(item: dict[str, Any], secrets: Secrets, *, now: float | None = None) -> SignedRequest:
    """A raw RFC 5322 message received when `date` says (its Received line, as the desk's mail
    system writes it above everything else, and its Date header)."""
    when = format_datetime(_when(_need(item, "date"), "date"))
    msg = EmailMessage()
    msg["Received"] = f"from replay.refdesk by mx.tccd.edu; {when}"
    msg["From"] = _need(item, "from")
    msg["To"] = "askdesk@tccd.edu"
    msg["Subject"] = item.get("subject") or ""
    msg["Date"] = when
    message_id = item.get("message_id") or f"{uuid.uuid4().hex}@replay.refdesk"
    msg["Message-ID"] = f"<{message_id.strip('<>')}>"
    msg.set_content(_need(item, "text"))
    body = msg.as_bytes()
    headers = standard_webhook_headers(body, secrets.webhook_secret, now=now)
    headers["Content-Type"] = "message/rfc822"
    return SignedRequest("/webhooks/email/mime", body, headers=headers, channel="email")


def chat(item: dict[str, Any], secrets: Secrets, *, now: float | None = None) -> SignedRequest:
    """A chat platform lifecycle event."""
    event_type = _need(item, "type")
    data = item.get("data")
    if not isinstance(data, dict):
        raise InvalidItem("data: an object is required")
    stamp = item.get("timestamp") or datetime.now(UTC).isoformat()
    _when(stamp, "timestamp")
    body = json.dumps({"type": event_type, "timestamp": stamp, "data": data}).encode()
    headers = standard_webhook_headers(body, secrets.webhook_secret, now=now)
    headers["Content-Type"] = "application/json"
    return SignedRequest(
        "/webhooks/chat", body, headers=headers, channel=str(data.get("channel") or "chat")
    )


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL and the sorted form pairs."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def standard_webhook_headers(
    body: bytes, secret: str, *, now: float | None = None
) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature for a body."""
    wid = f"msg_{uuid.uuid4().hex}"
    stamp = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return {
        "webhook-id": wid,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(wid, stamp, body.decode()),
    }


def _when(raw: str, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidItem(f"{name}: not an ISO 8601 datetime") from None
    if at.tzinfo is None:
        raise InvalidItem(f"{name}: needs a UTC offset")
    return at


def _address(sender: str) -> str:
    from email.utils import parseaddr

    return parseaddr(sender)[1] or sender
