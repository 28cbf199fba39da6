"""Desk hours in America/Chicago: boundaries, Sunday, DST, overnight decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.router.policy import DecisionInput, Policy
from shared.events import Channel, Priority

CHI = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("local", "is_open"),
    [
        (datetime(2025, 10, 3, 16, 59), True),  # Friday just before close
        (datetime(2025, 10, 3, 17, 0), False),  # Friday 17:00: closed
        (datetime(2025, 10, 2, 20, 59), True),  # Thursday
        (datetime(2025, 10, 2, 21, 0), False),
        (datetime(2025, 10, 4, 9, 0), True),  # Saturday opening
        (datetime(2025, 10, 4, 13, 0), False),
        (datetime(2025, 10, 5, 12, 0), False),  # Sunday closed
        (datetime(2025, 10, 6, 7, 59), False),  # Monday before opening
        (datetime(2025, 10, 6, 8, 0), True),
    ],
)
def test_is_open_at_boundaries(policy: Policy, local: datetime, is_open: bool) -> None:
    """Opening time is inclusive, closing time exclusive, in desk time."""
    assert policy.is_open(local.replace(tzinfo=CHI)) is is_open


def test_is_open_uses_policy_timezone(policy: Policy) -> None:
    """A UTC instant is converted: 22:30 UTC on a Friday is 17:30 in Chicago (closed)."""
    assert policy.is_open(datetime(2025, 10, 3, 21, 30, tzinfo=UTC)) is True  # 16:30 CDT
    assert policy.is_open(datetime(2025, 10, 3, 22, 30, tzinfo=UTC)) is False  # 17:30 CDT


def test_next_open_after_friday_close_is_saturday(policy: Policy) -> None:
    """Friday evening's next opening is Saturday 09:00."""
    nxt = policy.next_open(datetime(2025, 10, 3, 17, 0, tzinfo=CHI))
    assert nxt == datetime(2025, 10, 4, 9, 0, tzinfo=CHI)


def test_next_open_from_sunday_is_monday(policy: Policy) -> None:
    """Sunday is closed all day; the desk next opens Monday 08:00."""
    nxt = policy.next_open(datetime(2025, 10, 5, 12, 0, tzinfo=CHI))
    assert nxt == datetime(2025, 10, 6, 8, 0, tzinfo=CHI)


def test_next_open_while_open_is_now(policy: Policy) -> None:
    """While open, next_open returns the moment itself."""
    now = datetime(2025, 10, 1, 10, 0, tzinfo=CHI)
    assert policy.next_open(now) == now


def test_dst_spring_forward(policy: Policy) -> None:
    """Sunday 9 March 2025 (DST starts): Monday 08:00 CDT is 13:00 UTC, not 14:00."""
    nxt = policy.next_open(datetime(2025, 3, 9, 12, 0, tzinfo=UTC))
    assert nxt.astimezone(UTC) == datetime(2025, 3, 10, 13, 0, tzinfo=UTC)
    assert policy.is_open(datetime(2025, 3, 10, 13, 0, tzinfo=UTC))
    assert not policy.is_open(datetime(2025, 3, 10, 12, 59, tzinfo=UTC))


def test_dst_fall_back(policy: Policy) -> None:
    """Monday 3 November 2025 (after DST ends): 08:00 CST is 14:00 UTC."""
    assert not policy.is_open(datetime(2025, 11, 3, 13, 30, tzinfo=UTC))
    assert policy.is_open(datetime(2025, 11, 3, 14, 0, tzinfo=UTC))


def test_overnight_decision(policy: Policy) -> None:
    """A message after Friday close is overnight, high priority, acknowledged with Saturday."""
    inp = DecisionInput(
        channel=Channel.SMS,
        text="where are the chemistry books",
        received_at=datetime(2025, 10, 3, 18, 0, tzinfo=CHI),
    )
    got = policy.decide(inp)
    assert got.overnight is True
    assert got.priority is Priority.HIGH
    assert got.after_hours_ack is not None and "tomorrow at 9:00 AM" in got.after_hours_ack


def test_daytime_decision_has_no_ack(policy: Policy) -> None:
    """During desk hours nothing is overnight and no acknowledgement is sent."""
    inp = DecisionInput(
        channel=Channel.CHAT,
        text="where are the chemistry books",
        received_at=datetime(2025, 10, 1, 10, 0, tzinfo=CHI),
    )
    got = policy.decide(inp)
    assert (got.overnight, got.priority, got.after_hours_ack) == (False, Priority.NORMAL, None)


def test_overnight_crisis_stays_urgent(policy: Policy) -> None:
    """A crisis on Sunday is urgent, not merely high."""
    inp = DecisionInput(
        channel=Channel.CHAT,
        text="I want to end it all",
        received_at=datetime(2025, 10, 5, 2, 0, tzinfo=CHI),
    )
    got = policy.decide(inp)
    assert got.overnight and got.priority is Priority.URGENT
