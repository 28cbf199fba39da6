"""Every production setting docs/operations.md documents reaches its service through compose.

The table "Production settings" in docs/operations.md is the operator's list. For each row this
checks that docker-compose.yml hands the variable from the shell to every service named (with
`docker compose config` where compose is installed, and by resolving the file the way compose
does, so the check also runs without it), that no secret gets a value in the file, that each
service's settings start in production from the table's variables alone and refuse to start
without each one marked required, and that every secret a settings class reads is listed.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from services.ingest.settings import IngestSettings
from services.notifier.settings import NotifierSettings
from services.publisher.settings import PublisherSettings
from services.router.settings import RouterSettings
from services.status.settings import StatusSettings

from .test_compose import _compose_command, env_names

REPO = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "router": RouterSettings,
    "notifier": NotifierSettings,
    "status": StatusSettings,
    "publisher": PublisherSettings,
}
# A production value for each documented variable, distinct enough to be recognised.
SAMPLES = {
    "REFDESK_ENV": "production",
    "REFDESK_LOG_LEVEL": "WARNING",
    "REFDESK_TOPIC_PARTITIONS": "6",
    "REFDESK_RAW_RETENTION_DAYS": "5",
    "REFDESK_TWILIO_AUTH_TOKEN": "twilio-token-from-the-shell-0123456789",
    "REFDESK_MAILGUN_SIGNING_KEY": "mailgun-key-from-the-shell-0123456789",
    "REFDESK_WEBHOOK_SECRET": "whsec_c2hlbGwtd2ViaG9vay1zZWNyZXQtMDEyMzQ1Njc4OQ==",
    "REFDESK_ADMIN_TOKEN": "ingest-admin-token-from-the-shell-0123456789",
    "REFDESK_INGEST_TWILIO_SHARED_KEY": "twilio-shared-key-from-the-shell-0123",
    "REFDESK_INGEST_PREVIOUS_TWILIO_AUTH_TOKEN": "previous-twilio-token-0123456789",
    "REFDESK_INGEST_PREVIOUS_MAILGUN_SIGNING_KEY": "previous-mailgun-key-0123456789",
    "REFDESK_INGEST_PREVIOUS_WEBHOOK_SECRET": "whsec_"
    + "cHJldmlvdXMtd2ViaG9vay1zZWNyZXQtMDEyMzQ1Njc4OQ==",
    "REFDESK_PUBLIC_BASE_URL": "https://refdesk.tccd.edu",
    "REFDESK_ROUTER_ADMIN_TOKEN": "router-admin-token-from-the-shell-0123456789",
    "REFDESK_SMS_API_BASE_URL": "https://api.twilio.com",
    "REFDESK_TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
    "REFDESK_SMS_FROM": "+18175550100",
    "REFDESK_SMS_STATUS_CALLBACK_URL": "https://desk.example.edu/webhooks/sms/status",
    "REFDESK_CHAT_API_URL": "https://chat.example.edu/refdesk/messages",
    "REFDESK_CHAT_API_SECRET": "whsec_Y2hhdC1wbGF0Zm9ybS1zZWNyZXQtZnJvbS1zaGVsbC0wMTIzNDU2Nzg5",
    "REFDESK_CHAT_API_PREVIOUS_SECRET": "whsec_cHJldmlvdXMtY2hhdC1zZWNyZXQtMDEyMzQ1Njc4OQ==",
    "REFDESK_CHAT_API_TIMEOUT_S": "8",
    "REFDESK_SMTP_HOST": "smtp.tccd.edu",
    "REFDESK_SMTP_PORT": "587",
    "REFDESK_SMTP_TLS": "starttls",
    "REFDESK_SMTP_USER": "refdesk-relay",
    "REFDESK_SMTP_PASSWORD": "smtp-password-from-the-shell",
    "REFDESK_SMTP_VALIDATE_CERTS": "true",
    "REFDESK_SMTP_CA_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "REFDESK_SMTP_ALLOW_PLAIN": "false",
    "REFDESK_MAIL_FROM": "Ask Desk <askdesk@tccd.edu>",
    "REFDESK_MAIL_REPLY_TO": "askdesk-replies@tccd.edu",
    "REFDESK_MESSAGE_ID_DOMAIN": "mail.refdesk.tccd.edu",
    "REFDESK_SURVEY_URL": "https://survey.tccd.edu/refdesk",
    "REFDESK_CONSOLE_URL": "https://refdesk.tccd.edu",
    "REFDESK_STATUS_SESSION_SECRET": "status-session-secret-from-the-shell-0123",
    "REFDESK_STATUS_SEED_FILE": "/data/staff.yaml",
    "REFDESK_TRANSCRIPT_RETENTION_DAYS": "200",
    "REFDESK_PUBLIC_HASH_KEY": "public-hash-key-from-the-shell-0123456789",
    "REFDESK_PUBLISHER_ADMIN_TOKEN": "publisher-admin-token-from-the-shell-0123",
}


def documented() -> dict[str, dict[str, bool]]:
    """service -> {variable: required in production}, from docs/operations.md's table."""
    text = (REPO / "docs/operations.md").read_text()
    start = text.index("| service | variable | production | what |")
    table: dict[str, dict[str, bool]] = {name: {} for name in SETTINGS}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        services, variable, production = (c.strip() for c in line.strip("|").split("|")[:3])
        for service in (s.strip() for s in services.split(",")):
            assert service in table, f"unknown service {service!r} in {line}"
            table[service][variable.strip("`")] = production.startswith("required")
    return table


DOCUMENTED = documented()
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
_REFERENCE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
)


def interpolate(value: str, shell: Mapping[str, str]) -> str:
    """A compose value with ${NAME}, ${NAME:-default}, ${NAME-default} and $$ resolved."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name", "op", "default")
        found = shell.get(name)
        if op == ":-" and not found:
            return default
        if op == "-" and found is None:
            return default
        return found or ""

    return _REFERENCE.sub(one, value)


def resolved_by_hand(shell: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """service -> the environment its container gets, resolved as compose resolves it: a bare
    `NAME:` takes the shell's value, or is left out of the container when the shell has none."""
    out: dict[str, dict[str, str]] = {}
    for name in SETTINGS:
        env: dict[str, str] = {}
        for key, value in COMPOSE["services"][name]["environment"].items():
            if value is None:
                if key in shell:
                    env[key] = shell[key]
            else:
                env[key] = interpolate(str(value), shell)
        out[name] = env
    return out


def resolved_by_compose(shell: Mapping[str, str], tmp_path: Path) -> dict[str, dict[str, str]]:
    """service -> the environment `docker compose config` gives it (unset entries dropped)."""
    command = _compose_command()
    if command is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed here")
    empty = tmp_path / "empty.env"  # an .env beside the file must not change the answer
    empty.write_text("")
    done = subprocess.run(
        [*command, "-f", str(REPO / "docker-compose.yml"), "--env-file", str(empty), "config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), **shell},
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    return {
        name: {
            k: str(v)
            for k, v in (config["services"][name]["environment"] or {}).items()
            if v is not None
        }
        for name in SETTINGS
    }


Resolver = Callable[[Mapping[str, str], Path], dict[str, dict[str, str]]]


@pytest.fixture(params=["by hand", "docker compose config"])
def resolve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Resolver]:
    if request.param == "by hand":
        yield lambda shell, _tmp: resolved_by_hand(shell)
    else:
        yield resolved_by_compose


def production_shell(*, leave_out: str | None = None) -> dict[str, str]:
    """The shell of an operator who set every documented variable (but one, if asked)."""
    every = {v for variables in DOCUMENTED.values() for v in variables}
    return {v: SAMPLES[v] for v in every if v != leave_out} | DATABASE_PASSWORD


DATABASE_PASSWORD = {"POSTGRES_PASSWORD": "pgFromTheShell0123456789"}
"""compose's PostgreSQL password, written into each service's database URL: production
refuses compose's default."""


def build(
    settings: type[BaseSettings], env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The service's settings, read from exactly this environment."""
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("REFDESK_")]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        return settings()


def test_the_table_names_settings_the_services_read() -> None:
    for name, variables in DOCUMENTED.items():
        assert variables, name
        unknown = set(variables) - env_names(SETTINGS[name])
        assert not unknown, f"{name} reads no {sorted(unknown)}"
        assert set(variables) <= set(SAMPLES), sorted(set(variables) - set(SAMPLES))


def secret_variables(model: type[BaseSettings]) -> set[str]:
    """The variables of a settings class's SecretStr fields."""
    prefix = str(model.model_config.get("env_prefix") or "")
    found = set()
    for field, info in model.model_fields.items():
        if info.annotation is SecretStr or "SecretStr" in str(info.annotation):
            alias = info.validation_alias
            found.add(alias if isinstance(alias, str) else f"{prefix}{field}".upper())
    return found


def test_every_secret_a_service_reads_is_in_the_table() -> None:
    for name, model in SETTINGS.items():
        secrets = secret_variables(model)
        assert secrets, name
        missing = secrets - set(DOCUMENTED[name])
        assert not missing, f"{name}: secrets not in the table: {sorted(missing)}"


def test_the_file_gives_no_secret_a_value() -> None:
    """Secrets pass through bare (`NAME:`): unset, the service's own default or refusal applies,
    never an empty string or a development value written in the file."""
    for name in SETTINGS:
        env = COMPOSE["services"][name]["environment"]
        for variable in DOCUMENTED[name]:
            assert variable in env, f"{name}: {variable} is not passed"
            value = env[variable]
            if value is not None:
                assert f"${{{variable}" in str(value), f"{name}: {variable} is fixed to {value!r}"
        for variable in secret_variables(SETTINGS[name]):
            assert env[variable] is None, f"{name}: {variable} must pass through bare"


def test_every_documented_setting_reaches_its_service(resolve: Resolver, tmp_path: Path) -> None:
    given = resolve(production_shell(), tmp_path)
    for name, variables in DOCUMENTED.items():
        for variable in variables:
            got = given[name].get(variable)
            assert got == SAMPLES[variable], f"{name} gets {variable}={got!r}, not the shell's"


def test_unset_settings_stay_unset_and_the_stack_is_a_development_one(
    resolve: Resolver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = resolve({}, tmp_path)
    for name, model in SETTINGS.items():
        env = given[name]
        assert env["REFDESK_ENV"] == "development", name
        assert "" not in env.values(), (
            f"{name}: empty values {sorted(k for k, v in env.items() if not v)}"
        )
        settings = build(model, env, monkeypatch)
        assert settings.env == "development"


def test_each_service_starts_in_production_from_the_table_alone(
    resolve: Resolver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = resolve(production_shell(), tmp_path)
    for name, model in SETTINGS.items():
        settings = build(model, given[name], monkeypatch)
        assert settings.env == "production", name


def test_optional_settings_may_stay_unset_in_production(
    resolve: Resolver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what the table marks required (and REFDESK_ENV): e.g. ingest's REFDESK_ADMIN_TOKEN
    left unset must not reach ingest as an empty string, which production refuses."""
    required = {v for variables in DOCUMENTED.values() for v, needed in variables.items() if needed}
    shell = {v: SAMPLES[v] for v in required | {"REFDESK_ENV"}} | DATABASE_PASSWORD
    given = resolve(shell, tmp_path)
    assert "REFDESK_ADMIN_TOKEN" not in given["ingest"]
    for name, model in SETTINGS.items():
        assert build(model, given[name], monkeypatch).env == "production", name


@pytest.mark.parametrize(
    ("service", "variable"),
    [(s, v) for s, variables in DOCUMENTED.items() for v, needed in variables.items() if needed],
)
def test_production_refuses_to_start_without_each_required_setting(
    service: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = resolved_by_hand(production_shell(leave_out=variable))[service]
    with pytest.raises(ValidationError, match=variable):
        build(SETTINGS[service], env, monkeypatch)


def test_production_refuses_composes_default_database_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An operator who never set POSTGRES_PASSWORD ran production on the password in the
    public compose file (an outside review); the refusal does not repeat the URL."""
    shell = production_shell()
    del shell["POSTGRES_PASSWORD"]
    for name, env in resolved_by_hand(shell).items():
        with pytest.raises(ValidationError, match="POSTGRES_PASSWORD") as refused:
            build(SETTINGS[name], env, monkeypatch)
        assert "refdesk@" not in str(refused.value), name
