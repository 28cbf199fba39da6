"""Publisher settings: production refuses the development secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.publisher.settings import DEV_ADMIN_TOKEN, DEV_HASH_KEY, PublisherSettings
from tests.fakes import secret_like

STRONG = secret_like("strong")


def test_development_defaults() -> None:
    settings = PublisherSettings()
    assert settings.port == 8085 and settings.public_hash_key.get_secret_value() == DEV_HASH_KEY
    assert settings.http_urls_allowed and not settings.webhook_allow_loopback


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFDESK_PUBLISHER_PORT", "9999")
    monkeypatch.setenv("REFDESK_PUBLIC_HASH_KEY", STRONG)
    monkeypatch.setenv("REFDESK_PUBLISHER_ADMIN_TOKEN", secret_like("admin"))
    settings = PublisherSettings()
    assert (
        settings.port,
        settings.public_hash_key.get_secret_value(),
        settings.admin_token.get_secret_value(),
    ) == (9999, STRONG, secret_like("admin"))


def test_other_services_variables_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # REFDESK_ADMIN_TOKEN is ingest's; REFDESK_PORT and the bare field names are nobody's
    monkeypatch.setenv("REFDESK_ADMIN_TOKEN", "ingest-admin-token-" + "i" * 30)
    monkeypatch.setenv("REFDESK_PORT", "9999")
    monkeypatch.setenv("REFDESK_WEBHOOK_MAX_ATTEMPTS", "1")
    settings = PublisherSettings()
    assert settings.admin_token.get_secret_value() == DEV_ADMIN_TOKEN
    assert (settings.port, settings.webhook_max_attempts) == (8085, 10)


def test_secrets_never_show_in_a_refused_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFDESK_ENV", "production")
    monkeypatch.setenv("REFDESK_PUBLIC_HASH_KEY", "hash-key-that-must-stay-secret-0123456789")
    monkeypatch.setenv("REFDESK_PUBLISHER_ADMIN_TOKEN", "short-admin-secret")
    with pytest.raises(ValidationError) as refused:
        PublisherSettings()
    shown = str(refused.value)
    assert "REFDESK_PUBLISHER_ADMIN_TOKEN" in shown
    assert "secret" not in shown.replace("REFDESK_", "")
    assert "must-stay" not in repr(PublisherSettings(env="development"))


def test_loopback_receivers_are_a_development_setting() -> None:
    assert PublisherSettings(webhook_allow_loopback=True).webhook_allow_loopback
    with pytest.raises(ValidationError, match="ALLOW_LOOPBACK"):
        PublisherSettings(
            env="production",
            public_hash_key=STRONG,
            admin_token=STRONG,
            webhook_allow_loopback=True,
        )


@pytest.mark.parametrize(
    ("hash_key", "token", "fails"),
    [
        (DEV_HASH_KEY, STRONG, "REFDESK_PUBLIC_HASH_KEY"),
        ("short", STRONG, "REFDESK_PUBLIC_HASH_KEY"),
        (STRONG, DEV_ADMIN_TOKEN, "REFDESK_PUBLISHER_ADMIN_TOKEN"),
        (STRONG, None, "REFDESK_PUBLISHER_ADMIN_TOKEN"),
    ],
)
def test_production_refuses_placeholder_secrets(
    hash_key: str, token: str | None, fails: str
) -> None:
    values = {"env": "production", "public_hash_key": hash_key}
    if token:
        values["admin_token"] = token
    with pytest.raises(ValidationError, match=fails):
        PublisherSettings(**values)


def test_production_with_real_secrets_and_https_only() -> None:
    settings = PublisherSettings(env="production", public_hash_key=STRONG, admin_token=STRONG)
    assert not settings.http_urls_allowed
