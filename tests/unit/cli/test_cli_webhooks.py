"""Replayed webhooks carry the signatures ingest's own verifiers accept."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

from refdesk_cli.replay import read_items
from refdesk_cli.webhooks import InvalidItem, Secrets, build
from services.ingest.providers.chat import parse_chat_event, verify_chat_webhook
from services.ingest.providers.mailgun import parse_mailgun_form, verify_mailgun
from services.ingest.providers.mime import parse_mime
from services.ingest.providers.twilio import parse_twilio_sms

SECRETS = Secrets(
    twilio_auth_token="unit-twilio",
    mailgun_signing_key="unit-mailgun",
    webhook_secret="whsec_" + base64.b64encode(b"unit-webhook-secret-0123456789").decode(),
    public_base_url="https://desk.example.edu",
)


def test_sms_is_signed_as_twilio_signs_it() -> None:
    request = build({"kind": "sms", "from": "+18175550123", "body": "can i renew"}, SECRETS)
    form = dict(parse_qsl(request.content.decode()))
    validator = RequestValidator(SECRETS.twilio_auth_token)
    assert validator.validate(
        "https://desk.example.edu/webhooks/sms", form, request.headers["X-Twilio-Signature"]
    )
    assert parse_twilio_sms(list(form.items())).body == "can i renew"


def test_email_without_a_date_is_a_signed_mailgun_post() -> None:
    now = time.time()
    request = build(
        {
            "kind": "email",
            "from": "Ana Gomez <Ana.Gomez@my.tccd.edu>",
            "subject": "Lost book",
            "text": "I lost a book",
        },
        SECRETS,
        now=now,
    )
    assert request.path == "/webhooks/email"
    form = dict(parse_qsl(request.content.decode()))
    verify_mailgun(
        signing_key=SECRETS.mailgun_signing_key,
        timestamp=form["timestamp"],
        token=form["token"],
        signature=form["signature"],
        now=now,
        tolerance_s=300,
    )
    mail = parse_mailgun_form(form)
    assert mail.sender_email == "ana.gomez@my.tccd.edu" and mail.text == "I lost a book"


def test_email_with_a_date_is_a_raw_message_dated_when_it_was_sent() -> None:
    request = build(
        {
            "kind": "email",
            "from": "Ana <ana@my.tccd.edu>",
            "subject": "Hours",
            "text": "When do you open?",
            "date": "2026-01-06T03:00:00-06:00",
        },
        SECRETS,
    )
    assert request.path == "/webhooks/email/mime"
    assert request.headers["webhook-signature"].startswith("v1,")
    mail = parse_mime(request.content)
    assert mail.received_at == datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def test_chat_events_are_standard_webhooks_signed() -> None:
    item = {
        "kind": "chat",
        "type": "chat.message",
        "timestamp": "2026-01-06T09:00:00+00:00",
        "data": {
            "conversation_id": "chat-1",
            "message_id": "m1",
            "text": "cite APA?",
            "channel": "email",
        },
    }
    request = build(item, SECRETS)
    headers = {k.lower(): v for k, v in request.headers.items()}
    verify_chat_webhook(secret=SECRETS.webhook_secret, headers=headers, body=request.content)
    event = parse_chat_event(request.content)
    assert event.timestamp == datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    assert request.channel == "email"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"kind": "fax"}, "kind"),
        ({"kind": "sms", "body": "hi"}, "from"),
        ({"kind": "email", "from": "a@b.edu"}, "text"),
        ({"kind": "chat", "type": "chat.message"}, "data"),
        (
            {"kind": "chat", "type": "chat.message", "data": {}, "timestamp": "yesterday"},
            "timestamp",
        ),
    ],
)
def test_a_bad_item_names_its_field(item: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidItem, match=rf"^{field}:"):
        build(item, SECRETS)


def test_secrets_default_to_ingests_development_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.ingest.settings import DEV_MAILGUN_KEY, DEV_TWILIO_TOKEN, DEV_WEBHOOK_SECRET

    for name in ("TWILIO_AUTH_TOKEN", "MAILGUN_SIGNING_KEY", "WEBHOOK_SECRET", "ENV"):
        monkeypatch.delenv(f"REFDESK_{name}", raising=False)
    secrets = Secrets.from_env()
    assert (secrets.twilio_auth_token, secrets.mailgun_signing_key, secrets.webhook_secret) == (
        DEV_TWILIO_TOKEN,
        DEV_MAILGUN_KEY,
        DEV_WEBHOOK_SECRET,
    )
    monkeypatch.setenv("REFDESK_TWILIO_AUTH_TOKEN", "from-env")
    assert Secrets.from_env().twilio_auth_token == "from-env"


def test_replay_files_skip_blank_and_comment_lines(tmp_path: Path) -> None:
    path = tmp_path / "shift.jsonl"
    path.write_text("# a shift\n\n" + json.dumps({"kind": "sms", "from": "+1", "body": "x"}) + "\n")
    assert [n for n, _ in read_items(path)] == [3]
