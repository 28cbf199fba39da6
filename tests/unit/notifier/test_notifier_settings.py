"""The notifier refuses to start in production without real SMS and mail delivery (issue 13,
finding 6): no outbox file for texts, no plain or anonymous SMTP unless explicitly allowed."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from services.notifier.settings import DEV_TWILIO_TOKEN, NotifierSettings
from tests.fakes import secret_like

TWILIO_TOKEN = secret_like("twilio", 32)  # Twilio's Auth Tokens are 32 characters
CHAT_SECRET = "whsec_" + base64.b64encode(secret_like("chat", 32).encode()).decode()
AAAA = "whsec_" + base64.b64encode(b"A" * 32).decode()
DEV_WEBHOOK = "whsec_ZGV2LXJlZmRlc2std2ViaG9vay1zZWNyZXQ="  # ingest's development secret

READY: dict[str, Any] = {
    "env": "production",
    "sms_api_base_url": "https://api.twilio.com",
    "twilio_account_sid": "AC" + "0123456789abcdef" * 2,
    "twilio_auth_token": TWILIO_TOKEN,
    "sms_from": "+18175550100",
    "smtp_host": "smtp.tccd.edu",
    "smtp_port": 587,
    "smtp_tls": "starttls",
    "smtp_user": "askdesk",
    "smtp_password": "relay-password-0123456789",
}


def test_production_with_real_delivery_starts() -> None:
    callback = "https://desk.example.edu/webhooks/sms/status"
    assert NotifierSettings(**READY, sms_status_callback_url=callback).sms_status_callback_url
    chat = {"chat_api_url": "https://chat.example.edu/refdesk", "chat_api_secret": CHAT_SECRET}
    assert NotifierSettings(**READY, **chat).chat_api_url == chat["chat_api_url"]
    settings = NotifierSettings(**READY)
    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == TWILIO_TOKEN
    assert "relay-password" not in repr(settings)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"sms_api_base_url": None}, "REFDESK_SMS_API_BASE_URL"),  # texts would go to a file
        ({"sms_api_base_url": "http://api.twilio.com"}, "REFDESK_SMS_API_BASE_URL"),
        ({"twilio_account_sid": None}, "REFDESK_TWILIO_ACCOUNT_SID"),
        ({"twilio_account_sid": "ACxyz"}, "REFDESK_TWILIO_ACCOUNT_SID"),
        ({"twilio_auth_token": None}, "REFDESK_TWILIO_AUTH_TOKEN"),
        ({"twilio_auth_token": "changeme"}, "REFDESK_TWILIO_AUTH_TOKEN"),
        ({"twilio_auth_token": DEV_TWILIO_TOKEN}, "REFDESK_TWILIO_AUTH_TOKEN"),
        ({"sms_from": None}, "REFDESK_SMS_FROM"),
        (
            {"sms_status_callback_url": "http://desk.example.edu/webhooks/sms/status"},
            "REFDESK_SMS_STATUS_CALLBACK_URL",
        ),
        (
            {"chat_api_url": "http://chat.example.edu/refdesk", "chat_api_secret": CHAT_SECRET},
            "REFDESK_CHAT_API_URL",
        ),
        (
            {"chat_api_url": "https://chat.example.edu/refdesk", "chat_api_secret": "whsec_YQ=="},
            "REFDESK_CHAT_API_SECRET",
        ),
        (
            {"chat_api_url": "https://chat.example.edu/refdesk", "chat_api_secret": DEV_WEBHOOK},
            "REFDESK_CHAT_API_SECRET",
        ),
        (
            {"chat_api_url": "https://chat.example.edu/refdesk", "chat_api_secret": AAAA},
            "REFDESK_CHAT_API_SECRET",
        ),
        (
            {
                "chat_api_url": "https://chat.example.edu/refdesk",
                "chat_api_secret": CHAT_SECRET,
                "chat_api_previous_secret": AAAA,
            },
            "REFDESK_CHAT_API_PREVIOUS_SECRET",
        ),
        ({"smtp_tls": "none"}, "REFDESK_SMTP_TLS"),
        ({"smtp_validate_certs": False}, "REFDESK_SMTP_TLS"),
        ({"smtp_user": None}, "REFDESK_SMTP_USER"),
        ({"smtp_password": None}, "REFDESK_SMTP_PASSWORD"),
    ],
)
def test_production_refuses(change: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named) as refused:
        NotifierSettings(**{**READY, **change})
    assert "relay-password" not in str(refused.value)
    assert TWILIO_TOKEN not in str(refused.value)
    assert CHAT_SECRET not in str(refused.value)


def test_a_trusted_plain_relay_is_an_explicit_choice() -> None:
    relay = {"smtp_tls": "none", "smtp_user": None, "smtp_password": None}
    with pytest.raises(ValidationError):
        NotifierSettings(**{**READY, **relay})
    assert NotifierSettings(**{**READY, **relay, "smtp_allow_plain": True})


def test_development_needs_none_of_it() -> None:
    settings = NotifierSettings(env="development")
    assert settings.sms_api_base_url is None and settings.smtp_tls == "none"


@pytest.mark.parametrize("domain", ["refdesk.tccd.edu", "localhost", "mail-1.example"])
def test_the_message_id_domain_is_a_domain_name(domain: str) -> None:
    assert NotifierSettings(message_id_domain=domain).message_id_domain == domain


@pytest.mark.parametrize("domain", ["", "tccd.edu>", "a b", "x@y", "-tccd.edu"])
def test_a_message_id_domain_that_is_not_one_is_refused(domain: str) -> None:
    with pytest.raises(ValidationError, match="message_id_domain"):
        NotifierSettings(message_id_domain=domain)


def test_an_smtp_send_must_end_within_its_lease() -> None:
    """A delivery still waiting on a slow relay when its lease ran out would be claimed again
    and sent twice."""
    with pytest.raises(ValidationError, match="REFDESK_LEASE_S"):
        NotifierSettings(lease_s=20)
    assert NotifierSettings(lease_s=20, smtp_send_timeout_s=8).smtp_send_timeout_s == 8
    assert NotifierSettings().smtp_send_timeout_s > NotifierSettings().smtp_timeout_s
