"""A start names the REFDESK_* variables no part of refdesk reads (an operator's probe: a
misspelt `REFDESK_TRANSCRIPT_RETENTION_DAY=30` was ignored, and transcripts kept 365 days)."""

from __future__ import annotations

import io
import os

import pytest

from services.status.settings import StatusSettings
from shared import variables
from shared.service import start


def test_a_misspelt_variable_is_named_with_the_one_it_looks_like() -> None:
    environ = {
        "REFDESK_TRANSCRIPT_RETENTION_DAY": "30",
        "REFDESK_PUBLISHER_ADMN_TOKEN": "x",
        "REFDESK_WHATEVER": "1",
        "REFDESK_ENV": "production",  # known
        "REFDESK_TEST_POSTGRES_URL": "postgresql+asyncpg://x",  # the tests'
        "PATH": "/usr/bin",  # not refdesk's business
    }
    assert variables.unknown(environ) == [
        ("REFDESK_PUBLISHER_ADMN_TOKEN", "REFDESK_PUBLISHER_ADMIN_TOKEN"),
        ("REFDESK_TRANSCRIPT_RETENTION_DAY", "REFDESK_TRANSCRIPT_RETENTION_DAYS"),
        ("REFDESK_WHATEVER", None),
    ]


def test_every_setting_of_every_service_is_known() -> None:
    from tools.settings_table import env_name, settings_classes

    for _, cls in settings_classes():
        for name, field in cls.model_fields.items():
            assert env_name(name, field) in variables.SETTINGS, name


def test_a_start_says_so_before_the_service_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("REFDESK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REFDESK_TRANSCRIPT_RETENTION_DAY", "30")
    err = io.StringIO()
    assert start("status", lambda: "ran", StatusSettings, err=err) == "ran"
    assert err.getvalue() == (
        "refdesk status: REFDESK_TRANSCRIPT_RETENTION_DAY is not a refdesk setting and is"
        " ignored (did you mean REFDESK_TRANSCRIPT_RETENTION_DAYS?)\n"
    )


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgres://refdesk:pw@db:5432/refdesk",
            "postgresql+asyncpg://refdesk:pw@db:5432/refdesk",
        ),
        (
            "postgresql://refdesk@db/refdesk_{service}",
            "postgresql+asyncpg://refdesk@db/refdesk_{service}",
        ),
        ("postgresql+asyncpg://refdesk@db/refdesk", "postgresql+asyncpg://refdesk@db/refdesk"),
    ],
)
def test_a_postgres_url_as_its_own_tools_write_it_is_read(given: str, used: str) -> None:
    """`postgres://...` (the form psql and hosting providers give) had failed the start with
    NoSuchModuleError and a traceback."""
    from shared.settings import CommonSettings

    assert CommonSettings(database_url=given).database_url == used
