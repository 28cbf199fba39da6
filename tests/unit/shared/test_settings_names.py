"""Each setting is read only under its own service's variable name (issue 13, finding 6)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from tools.settings_table import env_name, settings_classes

LEAK = "value-meant-for-another-service"

ALIASED = [
    pytest.param(cls, name, id=f"{title}.{name}")
    for title, cls in settings_classes()
    for name, field in cls.model_fields.items()
    if env_name(name, field) != f"REFDESK_{name.upper()}"
]


def _plain(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_some_settings_have_service_prefixed_names() -> None:
    names = {p.id for p in ALIASED}
    assert {"status.port", "status.session_secret", "publisher.admin_token"} <= names


@pytest.mark.parametrize(("cls", "name"), ALIASED)
def test_a_field_is_not_read_from_its_bare_name(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], name: str
) -> None:
    # REFDESK_PORT, REFDESK_ADMIN_TOKEN (ingest's), REFDESK_SESSION_SECRET...: not this field's
    monkeypatch.setenv(f"REFDESK_{name.upper()}", LEAK)
    assert _plain(getattr(cls(), name)) != LEAK


@pytest.mark.parametrize(("cls", "name"), ALIASED)
def test_a_field_is_read_from_its_own_name(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], name: str
) -> None:
    field = cls.model_fields[name]
    if field.annotation not in (str, SecretStr, str | None, SecretStr | None):
        pytest.skip("not a text setting")
    monkeypatch.setenv(env_name(name, field), LEAK)
    assert _plain(getattr(cls(), name)) == LEAK


def test_init_keywords_still_use_field_names() -> None:
    from services.status.settings import StatusSettings

    assert StatusSettings(port=9000).port == 9000
