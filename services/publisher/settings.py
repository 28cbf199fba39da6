"""Publisher settings: REFDESK_* common settings plus REFDESK_PUBLISHER_* and the hash key."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from shared.domain import DEPARTMENTS
from shared.settings import CommonSettings, own_variable, refuse, weak_secret

DEV_HASH_KEY = "dev-public-hash-key-change-me"
DEV_ADMIN_TOKEN = "dev-publisher-admin-token-change-me"  # noqa: S105 (refused in production)


_env = own_variable("publisher")


class PublisherSettings(CommonSettings):
    """The public stream projector and the outbound webhook deliverer."""

    port: int = Field(8085, validation_alias=_env("port"), description="HTTP port")
    public_hash_key: SecretStr = Field(
        SecretStr(DEV_HASH_KEY),
        validation_alias="REFDESK_PUBLIC_HASH_KEY",
        description="HMAC-SHA256 key that turns conversation ids into public hashes",
    )
    admin_token: SecretStr = Field(
        SecretStr(DEV_ADMIN_TOKEN),
        validation_alias=_env("admin_token"),
        description="bearer token of the subscriptions admin API",
    )
    departments: list[str] = Field(
        default_factory=list,
        validation_alias=_env("departments"),
        description="department ids besides the desk's own (DOMAIN.md), as a JSON list: one "
        "added to the router's policy, so a chat platform's hint naming it is published and "
        "a subscription may filter on it",
    )
    projector_group: str = Field(
        "refdesk-publisher",
        validation_alias=_env("projector_group"),
        description="consumer group of the raw topics",
    )
    webhook_group: str = Field(
        "refdesk-publisher-webhooks",
        validation_alias=_env("webhook_group"),
        description="consumer group of refdesk.public for webhooks",
    )
    webhook_max_attempts: int = Field(
        10,
        ge=1,
        validation_alias=_env("webhook_max_attempts"),
        description="attempts before a delivery is dead",
    )
    webhook_backoff_base_s: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("webhook_backoff_base_s"),
        description="first retry delay; doubles per attempt",
    )
    webhook_backoff_max_s: float = Field(
        6 * 3600.0,
        gt=0,
        validation_alias=_env("webhook_backoff_max_s"),
        description="longest delay between attempts",
    )
    secret_grace_h: float = Field(
        24.0,
        ge=0,
        le=24 * 30,
        validation_alias=_env("secret_grace_h"),
        description="after a secret is rotated, deliveries are signed with the old one too for "
        "this long (a rotation may ask for less, 0 for none)",
    )
    webhook_timeout_s: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("webhook_timeout_s"),
        description="HTTP timeout of one delivery",
    )
    webhook_lease_s: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("webhook_lease_s"),
        description="how long a claimed delivery stays with one worker",
    )
    webhook_poll_interval_s: float = Field(
        1.0,
        gt=0,
        validation_alias=_env("webhook_poll_interval_s"),
        description="how often the worker looks for due deliveries",
    )
    webhook_concurrency: int = Field(
        64,
        ge=1,
        validation_alias=_env("webhook_concurrency"),
        description="deliveries in flight at once, all subscriptions together",
    )
    webhook_subscription_concurrency: int = Field(
        4,
        ge=1,
        validation_alias=_env("webhook_subscription_concurrency"),
        description="deliveries in flight at once to one subscription: a slow receiver holds "
        "no more, and the others' deliveries do not wait for it",
    )
    webhook_allow_loopback: bool = Field(
        False,
        validation_alias=_env("webhook_allow_loopback"),
        description="development only: let subscriptions deliver to loopback addresses "
        "(a receiver on this machine); refused in production",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> PublisherSettings:
        dev = frozenset({DEV_HASH_KEY, DEV_ADMIN_TOKEN})
        problems = [
            weak_secret(
                self.env, self.public_hash_key, variable="REFDESK_PUBLIC_HASH_KEY", dev_values=dev
            ),
            weak_secret(self.env, self.admin_token, variable=_env("admin_token"), dev_values=dev),
        ]
        if self.env == "production" and self.webhook_allow_loopback:
            problems.append(f"{_env('webhook_allow_loopback')} is refused in production")
        if self.webhook_lease_s <= self.webhook_timeout_s:
            problems.append(
                f"{_env('webhook_lease_s')} must be longer than {_env('webhook_timeout_s')}"
            )
        if self.webhook_backoff_max_s < self.webhook_backoff_base_s:
            problems.append(
                f"{_env('webhook_backoff_max_s')} must be >= {_env('webhook_backoff_base_s')}"
            )
        refuse(problems)  # every problem at once, not one a restart
        return self

    @property
    def http_urls_allowed(self) -> bool:
        """Whether subscriptions may use plain http:// URLs: in development only."""
        return self.env == "development"

    @property
    def known_departments(self) -> frozenset[str]:
        """The department ids that are published and may be filtered on."""
        return DEPARTMENTS | {d.strip().lower() for d in self.departments}
