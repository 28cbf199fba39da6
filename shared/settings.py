"""Settings common to every service, read only from REFDESK_* environment variables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
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
    log_level: str = Field("INFO", description="JSON logs on stderr at this level")
    topic_partitions: int = Field(3, ge=1, description="partitions of topics a service creates")
    raw_retention_days: int = Field(7, ge=1, description="retention of topics with patron data")
    shutdown_timeout_s: float = Field(8.0, gt=0, description="graceful stop budget on SIGTERM")
    host: str = Field(
        "127.0.0.1", description="address the HTTP server binds (0.0.0.0 in containers)"
    )
    port_file: Path | None = Field(
        None,
        description="once serving, write the HTTP port bound to this file (with a port of 0, "
        "the system picks a free one: how `refdesk_cli.stack` starts services for tests)",
    )

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


PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret"})


def secret_value(value: SecretStr | str | None) -> str | None:
    """The plain value of a secret setting (None when unset)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value


def refuse_weak_secret(
    env: str,
    value: SecretStr | str | None,
    *,
    variable: str,
    dev_values: frozenset[str] = frozenset(),
    min_length: int = 32,
) -> None:
    """In production, a secret must be set, not a placeholder or development value, and long."""
    if env != "production":
        return
    value = secret_value(value)
    if not value or value in PLACEHOLDER_SECRETS | dev_values or len(value) < min_length:
        raise ValueError(
            f"{variable} must be set to a random value of {min_length}+ characters in production"
        )
