"""Router settings (REFDESK_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import CommonSettings

DEFAULT_POLICY = Path(__file__).resolve().parent / "policy" / "default_policy.yaml"


class RouterSettings(CommonSettings):
    router_port: int = Field(8082, description="HTTP port")
    policy_file: Path = Field(DEFAULT_POLICY, description="the routing policy (YAML)")
    policy_watch_interval_s: float = Field(
        2.0, gt=0, description="how often the file is checked for changes"
    )
    router_group: str = Field(
        "refdesk-router", description="consumer group of refdesk.interactions"
    )
