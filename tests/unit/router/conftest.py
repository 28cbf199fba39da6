"""Fixtures for the router policy tests."""

from __future__ import annotations

import pytest

from services.router.policy import Policy, default_policy_path, load_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The shipped default policy."""
    return load_policy(default_policy_path())


@pytest.fixture()
def policy_text() -> str:
    """The shipped policy's YAML, to mutate into broken variants."""
    return default_policy_path().read_text("utf-8")
