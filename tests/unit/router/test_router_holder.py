"""PolicyHolder: reloads good files, refuses broken ones and keeps serving the old policy."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.router.policy import PolicyHolder, default_policy_path


@pytest.fixture()
def policy_file(tmp_path: Path) -> Path:
    """A writable copy of the shipped policy."""
    path = tmp_path / "policy.yaml"
    path.write_bytes(default_policy_path().read_bytes())
    return path


def test_reload_refuses_broken_file(policy_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A broken file is refused with a WARNING; the old policy keeps serving."""
    holder = PolicyHolder(policy_file)
    before = holder.current
    policy_file.write_text(
        policy_file.read_text().replace("department: tutoring\n", "department: nowhere\n")
    )
    with caplog.at_level(logging.WARNING):
        assert holder.reload() is False
    assert holder.current is before
    assert any(r.levelno == logging.WARNING and "nowhere" in r.getMessage() for r in caplog.records)


def test_a_refused_file_raises_the_gauge_until_a_good_one_loads(
    policy_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused reload was one WARNING line: the gauge (and RefdeskRoutingPolicyRefused) says
    the file on disk is not the one in force until a good file loads."""
    holder = PolicyHolder(policy_file)
    good = policy_file.read_text()
    assert holder.reload() is True
    assert REGISTRY.get_sample_value("refdesk_router_policy_refused") == 0
    policy_file.write_text(good.replace("department: tutoring\n", "department: nowhere\n"))
    assert holder.reload() is False
    assert REGISTRY.get_sample_value("refdesk_router_policy_refused") == 1
    policy_file.write_text(good)
    with caplog.at_level(logging.WARNING):
        assert holder.reload() is True
    assert REGISTRY.get_sample_value("refdesk_router_policy_refused") == 0
    # the same policy as before the refusal: the log's last word is not the refusal
    assert "policy file loads again" in caplog.records[-1].getMessage()


def test_reload_swaps_in_good_file(policy_file: Path) -> None:
    """A valid change is loaded and gets a new version."""
    holder = PolicyHolder(policy_file)
    old = holder.current.version
    policy_file.write_text(policy_file.read_text().replace('label: "2025-fall-1"', 'label: "v2"'))
    assert holder.reload() is True
    assert holder.current.version != old and holder.current.label == "v2"


def edit(policy_file: Path, text: str, later_s: int) -> None:
    """Write the policy file with an mtime `later_s` seconds on (the watch compares mtimes)."""
    policy_file.write_text(text)
    stat = policy_file.stat()
    os.utime(policy_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + later_s * 1_000_000_000))


async def until(done: Callable[[], bool]) -> None:
    """Give the watch task up to two seconds to make `done` true."""
    for _ in range(200):
        if done():
            return
        await asyncio.sleep(0.01)


async def test_watch_reloads_on_mtime_change(policy_file: Path) -> None:
    """The watch task notices a changed mtime and reloads."""
    holder = PolicyHolder(policy_file)
    old = holder.current.version
    task = asyncio.create_task(holder.watch(0.01))
    try:
        edit(policy_file, policy_file.read_text().replace('label: "2025-fall-1"', 'label: "w"'), 5)
        await until(lambda: holder.current.version != old)
        assert holder.current.label == "w"
    finally:
        task.cancel()


async def test_a_policy_file_moved_away_is_said_and_raises_the_gauge(
    policy_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Renamed away (or a mount gone), the file had been skipped in silence, the gauge at 0."""
    holder = PolicyHolder(policy_file)
    assert holder.reload() is True
    good = policy_file.read_text()
    task = asyncio.create_task(holder.watch(0.01))
    gauge = "refdesk_router_policy_refused"
    try:
        with caplog.at_level(logging.WARNING):
            policy_file.rename(policy_file.with_suffix(".moved"))
            await until(lambda: REGISTRY.get_sample_value(gauge) == 1)
        assert REGISTRY.get_sample_value(gauge) == 1
        assert any("cannot be read" in r.getMessage() for r in caplog.records)
        edit(policy_file, good.replace('label: "2025-fall-1"', 'label: "back"'), 5)
        await until(lambda: holder.current.label == "back")
        assert REGISTRY.get_sample_value(gauge) == 0
    finally:
        task.cancel()


async def test_an_impossible_date_is_refused_and_the_next_good_edit_still_loads(
    policy_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An outside probe's `from: 2026-02-30` raised PyYAML's bare ValueError: the watch task
    died without a word and the router served the old policy through every later edit until
    a restart. Now the date is refused with its line, and the next good edit is loaded."""
    holder = PolicyHolder(policy_file)
    old = holder.current.version
    good = policy_file.read_text()
    task = asyncio.create_task(holder.watch(0.01))

    def refusals() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    try:
        with caplog.at_level(logging.WARNING):
            typo = "hours_exceptions: [{name: X, from: 2026-02-30}]"
            edit(policy_file, good.replace("hours_exceptions: []", typo), 5)
            await until(lambda: bool(refusals()))
        assert any("hours_exceptions[0].from" in m for m in refusals()), refusals()
        assert holder.current.version == old
        edit(policy_file, good.replace('label: "2025-fall-1"', 'label: "after the typo"'), 10)
        await until(lambda: holder.current.version != old)
        assert holder.current.label == "after the typo"
    finally:
        task.cancel()


def test_a_fault_of_the_loader_itself_keeps_the_old_policy(
    policy_file: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the loader raises, a reload keeps serving and says so; it never stops."""
    from services.router.policy import holder as holder_module

    holder = PolicyHolder(policy_file)
    before = holder.current

    def broken(_path: Path) -> None:
        raise ValueError("a fault of the loader's own")

    monkeypatch.setattr(holder_module, "load_policy", broken)
    with caplog.at_level(logging.WARNING):
        assert holder.reload() is False
    assert holder.current is before
    assert any("policy reload failed" in r.getMessage() for r in caplog.records)
