"""Publisher settings: production refuses the development secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.publisher.settings import DEV_ADMIN_TOKEN, DEV_HASH_KEY, PublisherSettings

STRONG = "x" * 40


def test_development_defaults() -> None:
    settings = PublisherSettings()
    assert settings.port == 8085 and settings.public_hash_key == DEV_HASH_KEY
    assert settings.http_urls_allowed


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFDESK_PUBLISHER_PORT", "9999")
    monkeypatch.setenv("REFDESK_PUBLIC_HASH_KEY", STRONG)
    monkeypatch.setenv("REFDESK_PUBLISHER_ADMIN_TOKEN", "y" * 40)
    settings = PublisherSettings()
    assert (settings.port, settings.public_hash_key, settings.admin_token) == (
        9999,
        STRONG,
        "y" * 40,
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
