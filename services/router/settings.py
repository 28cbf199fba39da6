"""Router settings (REFDESK_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.settings import CommonSettings, refuse, weak_secret

DEFAULT_POLICY = Path(__file__).resolve().parent / "policy" / "default_policy.yaml"
DEFAULT_MODEL = Path(__file__).resolve().parent / "data" / "model" / "router-model.npz"
DEV_ADMIN_TOKEN = "dev-router-admin-token-change-me"  # noqa: S105 (refused in production)


class RouterSettings(CommonSettings):
    router_port: int = Field(8082, description="HTTP port")
    policy_file: Path = Field(DEFAULT_POLICY, description="the routing policy (YAML)")
    policy_watch_interval_s: float = Field(
        2.0, gt=0, description="how often the file is checked for changes"
    )
    router_model_file: Path | None = Field(
        DEFAULT_MODEL,
        description="the learned net's weights (.npz, its .json beside it); empty: rules only",
    )
    router_group: str = Field(
        "refdesk-router", description="consumer group of refdesk.interactions"
    )
    router_admin_token: SecretStr = Field(
        SecretStr(DEV_ADMIN_TOKEN),
        description="bearer token of POST /explain; 32+ random characters in production",
    )

    @field_validator("policy_file", "router_model_file")
    @classmethod
    def _an_existing_file(cls, path: Path | None) -> Path | None:
        # a missing file is named with every other refused setting, before anything loads;
        # an empty model variable is the rules alone
        if path is not None and path != Path() and not path.is_file():
            raise ValueError("no such file")
        return path

    @model_validator(mode="after")
    def _refuse_placeholder_token(self) -> RouterSettings:
        token = self.router_admin_token
        dev = frozenset({DEV_ADMIN_TOKEN})
        refuse(
            [weak_secret(self.env, token, variable="REFDESK_ROUTER_ADMIN_TOKEN", dev_values=dev)]
        )
        return self
