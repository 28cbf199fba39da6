"""Pure rules: queue order, auto-assign choice, auth rules, sessions, settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from status_fakes import T0

from services.status.assignment import pick_assignee
from services.status.auth import (
    Actor,
    can_set_status,
    has_role,
    hash_token,
    read_session,
    sign_session,
)
from services.status.models import Conversation
from services.status.queue import queue_sort_key
from services.status.settings import StatusSettings
from tests.fakes import secret_like


def conv(
    cid: str, *, minutes_ago: int, crisis: bool = False, overnight: bool = False
) -> Conversation:
    at = T0 - timedelta(minutes=minutes_ago)
    return Conversation(
        conversation_id=cid,
        channel="chat",
        opened_at=at,
        last_message_at=at,
        crisis=crisis,
        overnight=overnight,
        state="open",
        priority="normal",
    )


def test_queue_order_is_crises_unacknowledged_first_then_overnight_then_rest_oldest_first() -> None:
    rows = [
        conv("new-normal", minutes_ago=1),
        conv("old-normal", minutes_ago=50),
        conv("overnight-recent", minutes_ago=300, overnight=True),
        conv("overnight-oldest", minutes_ago=900, overnight=True),
        conv("crisis", minutes_ago=0, crisis=True),
        conv("acknowledged-crisis", minutes_ago=60, crisis=True),
    ]
    rows[-1].acknowledged_at = T0
    ordered = [c.conversation_id for c in sorted(rows, key=queue_sort_key)]
    assert ordered == [
        "crisis",
        "acknowledged-crisis",
        "overnight-oldest",
        "overnight-recent",
        "old-normal",
        "new-normal",
    ]


@pytest.mark.parametrize(
    ("loads", "capacity", "expected"),
    [
        ({}, 3, None),
        ({"a": 0}, 3, "a"),
        ({"a": 2, "b": 1}, 3, "b"),
        ({"a": 1, "b": 1}, 3, "a"),  # tie: by id
        ({"a": 3, "b": 3}, 3, None),  # everyone at capacity
        ({"a": 3, "b": 2}, 3, "b"),
    ],
)
def test_pick_assignee(loads: dict[str, int], capacity: int, expected: str | None) -> None:
    assert pick_assignee(loads, capacity=capacity) == expected


@pytest.mark.parametrize(
    ("role", "target", "allowed"),
    [
        ("staff", "me", True),
        ("staff", "someone-else", False),
        ("supervisor", "someone-else", True),
        ("admin", "someone-else", True),
    ],
)
def test_who_may_set_whose_status(role: str, target: str, allowed: bool) -> None:
    assert can_set_status(Actor(id="me", role=role), target) is allowed


@pytest.mark.parametrize(
    ("role", "needed", "ok"),
    [
        ("staff", "supervisor", False),
        ("supervisor", "supervisor", True),
        ("admin", "supervisor", True),
        ("supervisor", "admin", False),
        ("admin", "admin", True),
        ("nonsense", "staff", False),
    ],
)
def test_role_ranks(role: str, needed: str, ok: bool) -> None:
    assert has_role(Actor(id="x", role=role), needed) is ok


def test_tokens_are_stored_as_sha256() -> None:
    digest = hash_token("dev-mgarcia-token")
    assert len(digest) == 64 and "mgarcia" not in digest


def test_session_cookie_round_trip_expiry_and_tampering() -> None:
    cookie = sign_session("mgarcia", secret="s" * 32, now=T0, max_age_s=60)
    assert read_session(cookie, secret="s" * 32, now=T0) == "mgarcia"
    assert read_session(cookie, secret="s" * 32, now=T0 + timedelta(seconds=61)) is None
    assert read_session(cookie, secret="t" * 32, now=T0) is None
    forged = sign_session("dkim", secret="x" * 32, now=T0, max_age_s=60)
    assert (
        read_session(forged.split(".")[0] + "." + cookie.split(".")[1], secret="s" * 32, now=T0)
        is None
    )
    assert read_session(None, secret="s" * 32, now=T0) is None
    assert read_session("garbage", secret="s" * 32, now=T0) is None


def test_production_refuses_placeholder_session_secret() -> None:
    with pytest.raises(ValidationError, match="SESSION_SECRET"):
        StatusSettings(env="production")
    ok = StatusSettings(env="production", session_secret=secret_like("session"))
    assert ok.port == 8084


def test_settings_read_status_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFDESK_STATUS_PORT", "9191")
    monkeypatch.setenv("REFDESK_STATUS_AUTO_ASSIGN", "true")
    monkeypatch.setenv("REFDESK_KAFKA_BOOTSTRAP", "kafka:9092")
    settings = StatusSettings()
    assert (settings.port, settings.auto_assign, settings.kafka_bootstrap) == (
        9191,
        True,
        "kafka:9092",
    )
