"""Production refuses missing, placeholder, development and short secrets in every service."""

from __future__ import annotations

import base64
import secrets

import pytest
from pydantic import ValidationError

from services.ingest.settings import DEV_TWILIO_TOKEN, IngestSettings
from services.notifier.settings import NotifierSettings
from services.publisher.settings import PublisherSettings
from services.status.settings import DEV_SESSION_SECRET, StatusSettings
from shared.settings import weak_database_password, weak_secret
from shared.webhooks import DEV_WEBHOOK_SECRET
from tests.fakes import secret_like, webhook_secret_like

STRONG = secret_like("strong")
INGEST_OK = {
    "twilio_auth_token": STRONG,
    "mailgun_signing_key": STRONG,
    "webhook_secret": webhook_secret_like("chat"),
}


@pytest.mark.parametrize(
    "override",
    [
        {"twilio_auth_token": None},
        {"twilio_auth_token": DEV_TWILIO_TOKEN},
        {"mailgun_signing_key": "changeme"},
        {"webhook_secret": "short"},
        # an operator's probe: these started in production
        {"mailgun_signing_key": "a" * 40},
        {"twilio_auth_token": "dev-router-admin-token-change-me-dev-router"},
        # not base64: every signed chat webhook was then answered 500
        {"webhook_secret": "not-base64!!-but-long-enough-secret-value"},
        # the secrets below decode: a key of 32 "A"s, the development one, a 16-byte key, the
        # Standard Webhooks documentation's example (a chat platform review: all had started)
        {"webhook_secret": "whsec_" + base64.b64encode(b"A" * 32).decode()},
        {"webhook_secret": DEV_WEBHOOK_SECRET},
        {"webhook_secret": "whsec_" + base64.b64encode(b"0123456789abcdef").decode()},
        {"webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        # the same keys written otherwise: without whsec_, without the padding
        {"webhook_secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        {"webhook_secret": DEV_WEBHOOK_SECRET.rstrip("=")},
        {"webhook_secret": DEV_WEBHOOK_SECRET.removeprefix("whsec_")},
        {"ingest_previous_webhook_secret": "whsec_" + base64.b64encode(b"B" * 32).decode()},
    ],
)
def test_ingest_refuses_weak_provider_secrets(override: dict[str, str | None]) -> None:
    with pytest.raises(ValidationError, match="REFDESK_"):
        IngestSettings(env="production", **{**INGEST_OK, **override})


def test_ingest_accepts_real_secrets_and_fills_development_ones() -> None:
    assert IngestSettings(env="production", **INGEST_OK).secrets()[0] == STRONG
    assert IngestSettings(env="development").secrets()[0] == DEV_TWILIO_TOKEN


@pytest.mark.parametrize(
    "token",
    ["a", "changeme", "x" * 31, "a" * 40, "abab" * 10, "our-admin-token-placeholder-0123456789"],
)
def test_ingest_refuses_a_weak_admin_token_in_production(token: str) -> None:
    with pytest.raises(ValidationError, match="REFDESK_ADMIN_TOKEN"):
        IngestSettings(env="production", admin_token=token, **INGEST_OK)
    assert IngestSettings(
        env="production", admin_token=secret_like("admin"), **INGEST_OK
    ).admin_token
    assert IngestSettings(env="production", **INGEST_OK).admin_token is None  # API closed


def test_an_empty_variable_is_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose passes `REFDESK_ADMIN_TOKEN: ${REFDESK_ADMIN_TOKEN:-}` as "" when unset: the
    optional token stays unset (the API closed) instead of refusing the start."""
    monkeypatch.setenv("REFDESK_ENV", "production")
    monkeypatch.setenv("REFDESK_ADMIN_TOKEN", "")
    for name, value in INGEST_OK.items():
        monkeypatch.setenv(f"REFDESK_{name.upper()}", value)
    assert IngestSettings().admin_token is None


def test_a_refused_start_never_shows_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFDESK_ENV", "production")
    monkeypatch.setenv("REFDESK_TWILIO_AUTH_TOKEN", "twilio-token-value-9f8e7d6c5b4a")
    monkeypatch.setenv("REFDESK_MAILGUN_SIGNING_KEY", "short")
    with pytest.raises(ValidationError) as refused:
        IngestSettings()
    assert "REFDESK_MAILGUN_SIGNING_KEY" in str(refused.value)
    assert "9f8e7d6c5b4a" not in str(refused.value) and "short" not in str(refused.value)
    shown = repr(IngestSettings(env="development", admin_token="admin-value-0123456789"))
    assert "0123456789" not in shown


@pytest.mark.parametrize("secret", [DEV_SESSION_SECRET, "secret", "x" * 31])
def test_status_refuses_weak_session_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="REFDESK_STATUS_SESSION_SECRET"):
        StatusSettings(env="production", session_secret=secret)


def test_publisher_refuses_its_development_keys_in_production() -> None:
    with pytest.raises(ValidationError, match="REFDESK_PUBLIC_HASH_KEY"):
        PublisherSettings(env="production", admin_token=STRONG)
    assert PublisherSettings(env="production", public_hash_key=STRONG, admin_token=STRONG)


def test_the_public_base_url_follows_a_moved_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """With REFDESK_INGEST_PORT=18201 a Twilio signature over the real URL was refused 403: the
    default named port 8081 whatever the port."""
    monkeypatch.delenv("REFDESK_INGEST_PORT", raising=False)
    monkeypatch.delenv("REFDESK_PUBLIC_BASE_URL", raising=False)
    assert IngestSettings().public_base_url == "http://127.0.0.1:8081"
    assert IngestSettings(ingest_port=18201).public_base_url == "http://127.0.0.1:18201"
    named = IngestSettings(ingest_port=18201, public_base_url="https://refdesk.tccd.edu")
    assert named.public_base_url == "https://refdesk.tccd.edu"


# values an operator review started production with: stand-ins copied from a template
TEMPLATE_VALUES = [
    "your-twilio-auth-token",
    "YOUR_MAILGUN_SIGNING_KEY_0123456789",
    "<generate with secrets.token_urlsafe(32)>",
    "REPLACE_WITH_A_LONG_RANDOM_TOKEN_VALUE",
    "your-session-secret-goes-here-123456",
    "passwordpassword12345678PASSWORD",
    "your_auth_token_here_ok",
]


@pytest.mark.parametrize("value", TEMPLATE_VALUES)
def test_template_stand_ins_read_as_placeholders(value: str) -> None:
    assert weak_secret("production", value, variable="REFDESK_X", min_length=16)
    assert weak_secret("development", value, variable="REFDESK_X") is None


@pytest.mark.parametrize("label", [f"generated-{n}" for n in range(200)])
def test_generated_secrets_do_not(label: str) -> None:
    """Real secrets: base64 as `secrets.token_urlsafe` and SHA digests make them."""
    assert weak_secret("production", secret_like(label), variable="REFDESK_X") is None
    assert weak_secret("production", secrets.token_urlsafe(32), variable="REFDESK_X") is None
    assert weak_secret("production", secrets.token_hex(24), variable="REFDESK_X") is None


def test_a_generated_secret_holding_dev_is_not_a_development_value() -> None:
    """`secrets.token_urlsafe(32)` holds "dev-" about once in 33,000 (a review found 6 in
    200,000 refused); only a value that starts with it reads as a development one."""
    assert weak_secret("production", "kWDeV-RdxVrN-" + secret_like("x"), variable="X") is None
    assert weak_secret("production", "dev-" + secret_like("x"), variable="X")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://refdesk:refdesk@db:5432/refdesk_{service}",
        "postgresql+asyncpg://refdesk@db:5432/refdesk_{service}?password=refdesk",
        "postgresql+asyncpg://refdesk:Refdesk@db/refdesk",
        "postgresql+asyncpg://refdesk:postgres@db/refdesk",
        "postgresql+asyncpg://refdesk:changeit@db/refdesk",
        "postgresql+asyncpg://refdesk:yourpassword@db/refdesk",
    ],
)
def test_a_stand_in_database_password_is_refused(url: str) -> None:
    problem = weak_database_password("production", url)
    assert problem and "POSTGRES_PASSWORD" in problem and url not in problem
    assert weak_database_password("development", url) is None


def test_a_chosen_database_password_is_not() -> None:
    for password in ("Tr4v!s-Password-2026", secret_like("db", 24)):
        url = f"postgresql+asyncpg://refdesk:{password}@db/refdesk"
        assert weak_database_password("production", url) is None, password


@pytest.mark.parametrize(
    ("password", "refused"),
    [
        ("${SMTP_PASSWORD}", True),
        ("your smtp password", True),
        ("yourpassword", True),
        ("smtp_password", True),
        ("passwordpassword", True),
        ("********", True),
        ("TODO", True),
        ("changeme", True),
        ("password", True),
        ("<relay password>", True),
        ("Tr4v!s-Password-2026", False),
    ],
)
def test_the_mail_relays_password_is_refused_only_as_a_stand_in(
    password: str, refused: bool
) -> None:
    """The relay's password is the mail system's to choose (its length, its words), but
    "changeme" had started production."""
    settings = {
        "env": "production",
        "sms_api_base_url": "https://api.twilio.com",
        "twilio_account_sid": "AC" + "0123456789abcdef" * 2,
        "twilio_auth_token": secret_like("twilio"),
        "sms_from": "+18175550100",
        "smtp_tls": "starttls",
        "smtp_user": "refdesk-relay",
        "smtp_password": password,
    }
    if refused:
        with pytest.raises(ValidationError, match="REFDESK_SMTP_PASSWORD") as error:
            NotifierSettings(**settings)
        assert password not in str(error.value)
    else:
        assert NotifierSettings(**settings).env == "production"
