"""Settings common to every service, read only from REFDESK_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every refdesk service needs: where the broker, database and run folder are."""

    model_config = SettingsConfigDict(env_prefix="REFDESK_", extra="ignore")

    env: Literal["development", "production"] = "development"
    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str | None = Field(
        None, description="SQLAlchemy async URL; default: a SQLite file per service in run_dir"
    )
    run_dir: Path = Path("run")
    log_level: str = "INFO"
    topic_partitions: int = Field(3, ge=1)
    raw_retention_days: int = Field(7, ge=1, description="retention of topics with patron data")
    shutdown_timeout_s: float = Field(8.0, gt=0)
    host: str = "127.0.0.1"

    def db_url(self, service: str) -> str:
        """The database URL this service uses."""
        if self.database_url:
            return self.database_url
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.run_dir / f'{service}.db').resolve()}"
