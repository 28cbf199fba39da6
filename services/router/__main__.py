"""Entry point: python -m services.router {check-policy,explain,serve}; refused settings (a
missing or broken policy or model file among them) exit 2 naming their variables."""

from __future__ import annotations

import sys

from shared.service import start

from .cli import main
from .learned import ModelError
from .policy import PolicyError
from .settings import RouterSettings

if __name__ == "__main__":
    loaded = {PolicyError: "policy_file", ModelError: "router_model_file"}
    sys.exit(start("router", main, RouterSettings, loaded=loaded))
