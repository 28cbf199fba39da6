"""A service whose settings are refused exits 2 with one short line per REFDESK_* variable on
stderr, every one at once and never its value (it had printed a pydantic traceback naming the
field, `smtp_port`, and production's refusals one a restart)."""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.service import start
from shared.settings import variable_of

SECRET = "s3cret-value-not-to-echo"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("REFDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REFDESK_RUN_DIR", str(tmp_path / "run"))


def refused(
    module: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Run `python -m module` in process; the lines it wrote to stderr, having exited 2."""
    monkeypatch.setattr(sys, "argv", [module, "serve"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module(module, run_name="__main__")
    captured = capsys.readouterr()
    assert done.value.code == 2, captured.err
    assert "Traceback" not in captured.err and SECRET not in captured.err
    head, *lines = captured.err.splitlines()
    assert head.startswith("refdesk ") and "refused to start" in head
    return [line.strip() for line in lines]


def named(lines: list[str]) -> set[str]:
    """The variables the lines name first."""
    return {line.split(":")[0].split(" ")[0] for line in lines}


def test_the_notifier_names_every_variable_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFDESK_ENV", "production")
    monkeypatch.setenv("REFDESK_SMTP_PORT", SECRET)
    monkeypatch.setenv("REFDESK_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("REFDESK_DATABASE_URL", f"notaurl{SECRET}")
    monkeypatch.setenv("REFDESK_SMTP_PASSWORD", SECRET)
    lines = refused("services.notifier", capsys, monkeypatch)
    assert {
        "REFDESK_SMTP_PORT",
        "REFDESK_LOG_LEVEL",
        "REFDESK_DATABASE_URL",
        "REFDESK_TWILIO_ACCOUNT_SID",
        "REFDESK_SMS_FROM",
    } <= named(lines)
    assert not any(line.startswith("smtp_port") for line in lines)


def test_the_router_names_missing_files_and_its_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("REFDESK_ENV", "production")
    monkeypatch.setenv("REFDESK_POLICY_FILE", str(tmp_path / "missing-policy.yaml"))
    monkeypatch.setenv("REFDESK_ROUTER_MODEL_FILE", str(tmp_path / "missing-model.npz"))
    lines = refused("services.router", capsys, monkeypatch)
    assert "REFDESK_POLICY_FILE: no such file" in lines
    assert "REFDESK_ROUTER_MODEL_FILE: no such file" in lines
    assert "REFDESK_ROUTER_ADMIN_TOKEN" in named(lines)


def test_a_broken_policy_file_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "policy.yaml"
    broken.write_text("rules: [\n")
    monkeypatch.setenv("REFDESK_POLICY_FILE", str(broken))
    (line,) = refused("services.router", capsys, monkeypatch)
    assert line.startswith("REFDESK_POLICY_FILE: ") and "policy.yaml:2" in line


def test_ingest_refuses_every_weak_secret_in_one_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFDESK_ENV", "production")
    monkeypatch.setenv("REFDESK_MAILGUN_SIGNING_KEY", "short")
    monkeypatch.setenv("REFDESK_ADMIN_TOKEN", "also-short")
    monkeypatch.setenv("REFDESK_INGEST_PORT", SECRET)
    lines = refused("services.ingest", capsys, monkeypatch)
    assert {
        "REFDESK_INGEST_PORT",
        "REFDESK_TWILIO_AUTH_TOKEN",
        "REFDESK_MAILGUN_SIGNING_KEY",
        "REFDESK_WEBHOOK_SECRET",
        "REFDESK_ADMIN_TOKEN",
    } <= named(lines)
    assert "also-short" not in "\n".join(lines)


@pytest.mark.parametrize(
    ("module", "variable"),
    [("services.status", "REFDESK_STATUS_PORT"), ("services.publisher", "REFDESK_PUBLISHER_PORT")],
)
def test_a_field_read_under_its_alias_is_named_by_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    module: str,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, SECRET)
    monkeypatch.setenv("REFDESK_SHUTDOWN_TIMEOUT_S", "-1")
    lines = refused(module, capsys, monkeypatch)
    assert named(lines) == {variable, "REFDESK_SHUTDOWN_TIMEOUT_S"}


def test_the_variable_comes_from_the_classs_prefix_and_alias() -> None:
    class Other(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="ELSEWHERE_")
        port: int = 1
        token: str = Field("x", validation_alias="SOMETHING_ELSE")

    assert variable_of(Other, "port") == "ELSEWHERE_PORT"
    assert variable_of(Other, "token") == "SOMETHING_ELSE"
    assert variable_of(Other, "SOMETHING_ELSE") == "SOMETHING_ELSE"


def test_another_models_validation_error_is_not_taken_for_the_settings() -> None:
    class Payload(BaseModel):
        n: int

    def main() -> None:
        Payload.model_validate({"n": "x"})

    class Settings(BaseSettings):
        pass

    with pytest.raises(ValidationError):
        start("test", main, Settings)


def test_a_service_that_starts_returns_what_main_returned() -> None:
    class Settings(BaseSettings):
        pass

    assert start("test", lambda: 7, Settings) == 7


def test_a_failed_migration_logs_no_database_password() -> None:
    from shared.migrate import without_passwords

    said = "could not connect to postgresql+asyncpg://refdesk:s3cr3t-Pw@db:5432/refdesk_status"
    assert without_passwords(said) == (
        "could not connect to postgresql+asyncpg://refdesk:***@db:5432/refdesk_status"
    )
    assert without_passwords("no URL here") == "no URL here"
