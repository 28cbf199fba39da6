"""The router's routing policy: data in YAML, compiled once per version, pure Python."""

from __future__ import annotations

from pathlib import Path

from .decision import Decision, DecisionInput
from .engine import Policy
from .errors import PolicyError
from .holder import PolicyHolder
from .loader import load_policy, parse_policy
from .model import Department, DepartmentKind

__all__ = [
    "Decision",
    "DecisionInput",
    "Department",
    "DepartmentKind",
    "Policy",
    "PolicyError",
    "PolicyHolder",
    "default_policy_path",
    "load_policy",
    "parse_policy",
]


def default_policy_path() -> Path:
    """The policy file shipped with the router."""
    return Path(__file__).with_name("default_policy.yaml")
