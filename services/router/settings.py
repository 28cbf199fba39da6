"""Router settings (REFDESK_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from shared.settings import CommonSettings

DEFAULT_POLICY = Path(__file__).resolve().parent / "policy" / "default_policy.yaml"


class RouterSettings(CommonSettings):
    router_port: int = 8082
    policy_file: Path = DEFAULT_POLICY
    policy_watch_interval_s: float = 2.0
    router_group: str = "refdesk-router"
