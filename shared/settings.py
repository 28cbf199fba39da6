"""Settings common to every service, read only from REFDESK_* environment variables."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class OwnNameEnvSource(EnvSettingsSource):
    """Environment variables, each field read only under its own variable name.

    A field with a validation alias (REFDESK_STATUS_PORT) is read from that variable alone:
    `populate_by_name` would also read REFDESK_<field name> (REFDESK_PORT, REFDESK_ADMIN_TOKEN),
    which are other services' variables or none at all. Field names stay usable as keyword
    arguments in code and tests.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The value of the field's own variable (its alias, else REFDESK_<name>)."""
        alias = field.validation_alias
        if isinstance(alias, str):
            key = alias if self.case_sensitive else alias.lower()
            return self.env_vars.get(key), alias, self.field_is_complex(field)
        return super().get_field_value(field, field_name)


class CommonSettings(BaseSettings):
    """What every refdesk service needs: where the broker, database and run folder are."""

    # hide_input_in_errors: a refused start must never echo the values it was given (secrets).
    model_config = SettingsConfigDict(
        env_prefix="REFDESK_",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
        # an empty variable is an unset one (compose passes `${X:-}` as ""): an optional
        # secret left empty stays unset instead of failing a strength check
        env_ignore_empty=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then each field's own environment variable; nothing else."""
        return init_settings, OwnNameEnvSource(settings_cls)

    env: Literal["development", "production"] = Field(
        "development", description="production refuses development secrets and placeholders"
    )
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy async URL (`{service}` becomes the service's name); "
        "default: a SQLite file per service in run_dir",
    )
    run_dir: Path = Field(Path("run"), description="SQLite files, outboxes and logs in development")
    log_level: str = Field(
        "INFO",
        description="JSON logs on stderr at this level; DEBUG also writes SQL with its "
        "parameters (student data): for a diagnosis only, never left on in production",
    )
    topic_partitions: int = Field(3, ge=1, description="partitions of topics a service creates")
    raw_retention_days: int = Field(7, ge=1, description="retention of topics with patron data")
    transcript_retention_days: int = Field(
        365,
        ge=1,
        description="days student data is kept: a closed conversation's transcript and contact "
        "(status; one nobody closed, after its last message), the messages as sent (notifier) "
        "and a number's text thread (ingest), then purged",
    )
    shutdown_timeout_s: float = Field(8.0, gt=0, description="graceful stop budget on SIGTERM")
    host: str = Field(
        "127.0.0.1", description="address the HTTP server binds (0.0.0.0 in containers)"
    )
    forwarded_allow_ips: str = Field(
        "",
        description="the reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are "
        "believed (comma-separated addresses or networks, as uvicorn's --forwarded-allow-ips); "
        "empty: none, a request's client is the address that connected (the status sign-in "
        "throttle counts by it)",
    )
    port_file: Path | None = Field(
        None,
        description="once serving, write the HTTP port bound to this file (with a port of 0, "
        "the system picks a free one: how `refdesk_cli.stack` starts services for tests)",
    )

    @field_validator("log_level")
    @classmethod
    def _a_log_level(cls, level: str) -> str:
        if level.upper() not in logging.getLevelNamesMapping():
            raise ValueError("not a log level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _a_database_url(cls, url: str | None) -> str | None:
        # imported here: settings are read before anything else is loaded
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if url is not None:
            try:
                parsed = make_url(url.replace("{service}", "service"))
            except (ArgumentError, ValueError):
                # not the parser's message: it quotes the URL, password included
                raise ValueError(
                    "not a SQLAlchemy database URL (dialect+driver://user:password@host/database)"
                ) from None
            # the form PostgreSQL's own tools and hosting providers give (postgres://,
            # postgresql://) names no async driver: it failed the start with a traceback
            if parsed.drivername in ("postgres", "postgresql"):
                return "postgresql+asyncpg://" + url.split("://", 1)[1]
        return url

    @model_validator(mode="after")
    def _a_database_password(self) -> Self:
        refuse([weak_database_password(self.env, self.database_url)])
        return self

    def db_url(self, service: str) -> str:
        """The database URL this service uses."""
        if self.database_url:
            return self.database_url.replace("{service}", service)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.run_dir / f'{service}.db').resolve()}"


def own_variable(service: str) -> Callable[[str], str]:
    """The variable-name maker of a service whose field names do not carry its name:
    own_variable("status")("port") is REFDESK_STATUS_PORT (each variable read by one service)."""

    def variable(name: str) -> str:
        return f"REFDESK_{service.upper()}_{name.upper()}"

    return variable


def variable_of(settings: type[BaseSettings], field: str) -> str:
    """The environment variable a settings field is read from: its alias, else the class's
    env_prefix and the field's name (`smtp_port` -> REFDESK_SMTP_PORT)."""
    info = settings.model_fields.get(field)
    if info is None:
        aliases = {f.validation_alias for f in settings.model_fields.values()}
        if field in aliases:
            return field  # pydantic names a field read under its alias by the alias
    elif isinstance(info.validation_alias, str):
        return info.validation_alias
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


def refusals(settings: type[BaseSettings], exc: ValidationError) -> list[str]:
    """One line per refused setting, `REFDESK_X: why`, never its value.

    Field errors hide the checks made on the whole (production's secrets): those are looked
    for too, with the refused fields at their defaults, so one start names every problem.
    """
    lines = _lines(settings, exc)
    fields = {name: name for name in settings.model_fields} | {
        info.validation_alias: name
        for name, info in settings.model_fields.items()
        if isinstance(info.validation_alias, str)
    }
    refused = {
        fields[str(e["loc"][0])] for e in exc.errors() if e["loc"] and str(e["loc"][0]) in fields
    }
    if refused:
        defaults = {
            n: settings.model_fields[n].get_default(call_default_factory=True) for n in refused
        }
        try:
            settings(**defaults)
        except ValidationError as more:
            lines += [line for line in _lines(settings, more) if line not in lines]
    return lines


def _lines(settings: type[BaseSettings], exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        # a validator's own message rather than pydantic's "Value error, ..." around it
        why = str(error.get("ctx", {}).get("error") or error["msg"])
        if error["loc"]:
            lines.append(f"{variable_of(settings, str(error['loc'][0]))}: {why}")
        else:  # a check on the whole names its variables, one problem a line
            lines += why.splitlines()
    return lines


def refuse(problems: Iterable[str | None]) -> None:
    """Raise one ValueError naming every problem found (one a line), if there is any: an
    operator fixes them all before the next start, not one a restart."""
    found = [p for p in problems if p]
    if found:
        raise ValueError("\n".join(found))


PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "changeit", "secret", "password", "todo", "tbd", "redacted"}
)
"""Whole values that are stand-ins."""


def secret_value(value: SecretStr | str | None) -> str | None:
    """The plain value of a secret setting (None when unset)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value


def weak_secret(
    env: str,
    value: SecretStr | str | None,
    *,
    variable: str,
    dev_values: frozenset[str] = frozenset(),
    min_length: int = 32,
) -> str | None:
    """Why production refuses a secret (unset, a placeholder or development value, short, or
    plainly not random: 40 times "a", or a value that says it is a placeholder such as
    "dev-router-admin-token-change-me-..." were accepted), or None when it is acceptable (or
    not in production)."""
    if env != "production":
        return None
    value = secret_value(value)
    refused = f"{variable} must be set to a random value of {min_length}+ characters in production"
    if value and value in PLACEHOLDER_SECRETS | dev_values:
        return f"{refused} (it is a development or placeholder value)"
    if not value or len(value) < min_length:
        return refused
    if len(set(value)) < min(8, len(value) // 4):
        return f"{refused} (it repeats a few characters)"
    if reads_as_placeholder(value):
        return f"{refused} (it reads as a placeholder)"
    return None


PLACEHOLDER_WORDS = (
    "change-me",
    "changeme",
    "change_me",
    "replace",
    "placeholder",
    "your-",
    "your_",
    "your ",
    "example",
    "password",
    "generate",
    "-here",
    "_here",
)
"""Words in a value that say it was typed as a stand-in ("your-twilio-auth-token",
"REPLACE_WITH_A_LONG_RANDOM_TOKEN", "passwordpassword123...", all once accepted in production:
an outside review), never part of a generated secret: five characters or more, so a random
value holds one by chance about once in ten million."""

_CHOSEN_STAND_INS = frozenset({"", "your", "my", "the", "smtp", "mail", "relay", "db"})
"""What is left of a chosen password that is only "password" and these ("yourpassword",
"smtp_password", "passwordpassword")."""


def reads_as_placeholder(value: str, *, chosen: bool = False) -> bool:
    """Whether a secret says it is a stand-in: a placeholder word or value, the development
    prefix (`dev-`: at the start only, where a random value has it once in millions, not
    anywhere, once in 33,000), a template ("<generate with secrets.token_urlsafe(32)>",
    "${SMTP_PASSWORD}" never expanded), or a few characters over and over ("********").
    `chosen`: a password a person chose elsewhere (the mail relay's, the database's): holding
    "password" is not refused, being only that and a stand-in word is."""
    lowered = value.strip().lower()
    if lowered in PLACEHOLDER_SECRETS or lowered.startswith("dev-"):
        return True
    if (lowered.startswith("<") and lowered.endswith(">")) or lowered.startswith("${"):
        return True
    if len(set(lowered)) <= 2:
        return True
    if chosen:
        rest = "".join(c for c in lowered.replace("password", "") if c.isalnum())
        if "password" in lowered and rest in _CHOSEN_STAND_INS:
            return True
    words = [w for w in PLACEHOLDER_WORDS if not (chosen and w == "password")]
    return any(word in lowered for word in words)


DEFAULT_DATABASE_PASSWORDS = frozenset({"refdesk", "postgres"})
"""docker-compose.yml's PostgreSQL password when POSTGRES_PASSWORD is unset, and the one
PostgreSQL's own guides use."""


def weak_database_password(env: str, url: str | None) -> str | None:
    """Why production refuses a database URL's password (compose's default, or one that
    reads as a placeholder), or None. Said without the URL: it holds the password."""
    if env != "production" or not url:
        return None
    from sqlalchemy.engine import make_url  # imported here, as in `_a_database_url`

    parsed = make_url(url.replace("{service}", "service"))
    given = parsed.password if parsed.password is not None else parsed.query.get("password")
    if given is None:
        return None
    password = str(given if isinstance(given, str) else given[0]).strip()
    if password.lower() in DEFAULT_DATABASE_PASSWORDS or reads_as_placeholder(
        password, chosen=True
    ):
        return (
            "REFDESK_DATABASE_URL's password is compose's default or a placeholder: set "
            'POSTGRES_PASSWORD (docs/operations.md, rotating it: "PostgreSQL\'s password")'
        )
    return None
