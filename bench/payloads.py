"""Request and record payloads the benchmarks send: signed Twilio webhooks and interactions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from shared.events import Channel, InteractionReceived, Patron, PatronRole, derived_id, new_event

TWILIO_TOKEN = "bench-twilio-token"
MAILGUN_KEY = "bench-mailgun-key"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"bench-webhook-secret-0123456789").decode()
BASE = "https://desk.example.edu"
SMS_PATH = "/webhooks/sms"
RENEW = "can i renew my book for another two weeks please"
LABELLED = Path(__file__).parents[1] / "tests/unit/router/data/labelled.jsonl"


def message_sid(tag: int, i: int) -> str:
    """A Twilio MessageSid unique to one run (tag) and request (i)."""
    return f"SM{tag:08x}{i:024x}"


def lost_book(tcc_id: int) -> str:
    """A lost-book text: routed to circulation, which produces an email."""
    return (
        f"I lost a library book, what happens now? I'm Ana Gomez, TCC ID {tcc_id}, the book is 1984"
    )


def twilio_signature(url: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    """X-Twilio-Signature as Twilio computes it: URL + sorted name/value pairs, HMAC-SHA1."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def sms_request(host: str, *, sid: str, sender: str, text: str) -> bytes:
    """One raw HTTP/1.1 request for the Twilio SMS webhook, signed."""
    form = {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+18175550100",
        "Body": text,
        "NumMedia": "0",
    }
    body = urlencode(form).encode()
    head = (
        f"POST {SMS_PATH} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: {twilio_signature(BASE + SMS_PATH, form)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def labelled_rows() -> list[dict[str, object]]:
    """The router's labelled messages (the same set bench_explain uses)."""
    text = LABELLED.read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def interaction_records(
    n: int, tag: int
) -> list[tuple[bytes, bytes, list[tuple[str, bytes]], str]]:
    """N interactions as ingest publishes them (key, value, headers, interaction id).

    The labelled messages repeat in order; every one is received while the desk is open, so
    the mix of notification commands is the policy's, without after-hours acknowledgements.
    """
    at = datetime(2025, 10, 1, 15, 0, tzinfo=UTC)
    rows = labelled_rows()
    out = []
    for i in range(n):
        row = rows[i % len(rows)]
        channel = Channel(str(row["channel"]))
        conversation = f"bench-{tag:08x}-{i}"
        contact = {Channel.SMS: f"+1817555{i % 10_000:04d}", Channel.EMAIL: f"p{i}@my.tccd.edu"}
        data = InteractionReceived(
            interaction_id=derived_id("bench", str(tag), str(i)),
            conversation_id=conversation,
            channel=channel,
            provider="bench",
            provider_message_id=f"m{i}",
            patron=Patron(
                contact=contact.get(channel),
                role=PatronRole(str(row.get("patron_role", "unknown"))),
            ),
            text=str(row["text"]),
            received_at=at,
        )
        event = new_event(
            data, source="refdesk/ingest", subject=conversation, event_id=data.interaction_id
        )
        headers = [
            ("content-type", b"application/cloudevents+json"),
            ("ce_type", event.type.encode()),
            ("ce_id", event.id.encode()),
        ]
        out.append(
            (conversation.encode(), event.model_dump_json().encode(), headers, data.interaction_id)
        )
    return out
