"""The bench routes with the desk open every hour, so a run's work does not depend on when it
starts (after hours each new conversation gets one more notification, the acknowledgement)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.system import desk_open_policy
from services.router.policy.loader import load_policy
from services.router.settings import DEFAULT_POLICY


def test_the_bench_policy_is_the_shipped_one_with_the_desk_always_open(tmp_path: Path) -> None:
    shipped = load_policy(DEFAULT_POLICY)
    bench = load_policy(desk_open_policy(tmp_path))
    start = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)  # a Saturday: the desk opens 09:00-13:00
    every_quarter_hour = [start + timedelta(minutes=15 * k) for k in range(7 * 24 * 4)]
    assert all(bench.is_open(t) for t in every_quarter_hour)
    assert not all(shipped.is_open(t) for t in every_quarter_hour)
    assert bench.doc.model_dump(exclude={"hours"}) == shipped.doc.model_dump(exclude={"hours"})
