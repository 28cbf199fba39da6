"""Status service settings: REFDESK_* common settings plus REFDESK_STATUS_* of its own."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from shared.settings import CommonSettings, own_variable, refuse, weak_secret

DEFAULT_SEED = Path(__file__).resolve().parent / "staff_seed.yaml"
DEV_SESSION_SECRET = "dev-session-secret-change-me"  # noqa: S105 (development only; production refuses it)


_env = own_variable("status")
SEED_FILE_VARIABLE = _env("seed_file")


class StatusSettings(CommonSettings):
    """Who is available where, and what is waiting for whom."""

    port: int = Field(8084, validation_alias=_env("port"), description="HTTP port")
    seed_file: Path | None = Field(
        DEFAULT_SEED,
        validation_alias=_env("seed_file"),
        description="staff roster loaded at start (a YAML file; staff not yet in the database are "
        "added); in production only a file named here, never the shipped development roster, "
        "and its development tokens only in development",
    )
    heartbeat_away_after_s: float = Field(
        300,
        gt=0,
        validation_alias=_env("heartbeat_away_after_s"),
        description="a lapsed heartbeat sets Away after this",
    )
    heartbeat_offline_after_s: float = Field(
        1800,
        gt=0,
        validation_alias=_env("heartbeat_offline_after_s"),
        description="and Offline after this",
    )
    crisis_ack_timeout_s: float = Field(
        300,
        gt=0,
        validation_alias=_env("crisis_ack_timeout_s"),
        description=(
            "an unacknowledged crisis is emailed to the supervisors Online after this (to every"
            " active supervisor when none is Online), and again until someone acknowledges it,"
            " the rounds 1, 2, ... 6 times this apart"
        ),
    )
    auto_assign: bool = Field(
        False,
        validation_alias=_env("auto_assign"),
        description="assign new conversations to Online staff, least busy first",
    )
    capacity_per_person: int = Field(
        3,
        ge=1,
        validation_alias=_env("capacity_per_person"),
        description="open conversations per person for auto-assignment",
    )
    sweep_interval_s: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("sweep_interval_s"),
        description="how often heartbeats and crisis acknowledgements are checked",
    )
    publish_timeout_s: float = Field(
        4.0,
        gt=0,
        validation_alias=_env("publish_timeout_s"),
        description="longest wait for the broker's ack of a staff action's events (they are "
        "saved in the outbox with the change, and the periodic relay publishes them once the "
        "broker is back: docs/reliability.md); of a presence change or an erasure, before "
        "answering 503",
    )
    session_secret: SecretStr = Field(
        SecretStr(DEV_SESSION_SECRET),
        validation_alias=_env("session_secret"),
        description="signs the dashboard cookie; 32+ random characters in production",
    )
    session_max_age_s: int = Field(
        12 * 3600,
        gt=0,
        validation_alias=_env("session_max_age_s"),
        description="dashboard session lifetime",
    )
    cookie_secure: bool = Field(
        False,
        validation_alias=_env("cookie_secure"),
        description="mark the cookie Secure (behind HTTPS); always on in production",
    )

    group: str = Field(
        "refdesk-status",
        validation_alias=_env("group"),
        description="consumer group of the queue and transcript projection",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> StatusSettings:
        dev = frozenset({DEV_SESSION_SECRET})
        secret = self.session_secret
        refuse([weak_secret(self.env, secret, variable=_env("session_secret"), dev_values=dev)])
        if self.env == "production":
            self.cookie_secure = True  # a session cookie never travels over plain HTTP there
            self._no_development_roster()
        if self.heartbeat_offline_after_s < self.heartbeat_away_after_s:
            raise ValueError("heartbeat_offline_after_s must be >= heartbeat_away_after_s")
        return self

    def _no_development_roster(self) -> None:
        """Production loads only a roster the operator names: the shipped one is fake staff."""
        if self.seed_file is None or self.seed_file.resolve() != DEFAULT_SEED:
            return
        if "seed_file" in self.model_fields_set:
            raise ValueError(
                f"{SEED_FILE_VARIABLE} names the shipped development roster, which production "
                "never loads: name your own roster file, or leave it unset"
            )
        self.seed_file = None
