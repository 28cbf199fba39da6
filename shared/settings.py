"""Settings common to every service, read only from REFDESK_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every refdesk service needs: where the broker, database and run folder are."""

    model_config = SettingsConfigDict(env_prefix="REFDESK_", extra="ignore")

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

    def db_url(self, service: str) -> str:
        """The database URL this service uses."""
        if self.database_url:
            return self.database_url.replace("{service}", service)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.run_dir / f'{service}.db').resolve()}"


PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret"})


def refuse_weak_secret(
    env: str,
    value: str | None,
    *,
    variable: str,
    dev_values: frozenset[str] = frozenset(),
    min_length: int = 32,
) -> None:
    """In production, a secret must be set, not a placeholder or development value, and long."""
    if env != "production":
        return
    if not value or value in PLACEHOLDER_SECRETS | dev_values or len(value) < min_length:
        raise ValueError(
            f"{variable} must be set to a random value of {min_length}+ characters in production"
        )
