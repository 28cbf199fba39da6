"""PolicyHolder: reloads good files, refuses broken ones and keeps serving the old policy."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

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


def test_reload_swaps_in_good_file(policy_file: Path) -> None:
    """A valid change is loaded and gets a new version."""
    holder = PolicyHolder(policy_file)
    old = holder.current.version
    policy_file.write_text(policy_file.read_text().replace('label: "2025-fall-1"', 'label: "v2"'))
    assert holder.reload() is True
    assert holder.current.version != old and holder.current.label == "v2"


async def test_watch_reloads_on_mtime_change(policy_file: Path) -> None:
    """The watch task notices a changed mtime and reloads."""
    holder = PolicyHolder(policy_file)
    old = holder.current.version
    task = asyncio.create_task(holder.watch(0.01))
    try:
        policy_file.write_text(
            policy_file.read_text().replace('label: "2025-fall-1"', 'label: "w"')
        )
        stat = policy_file.stat()
        os.utime(policy_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if holder.current.version != old:
                break
        assert holder.current.label == "w"
    finally:
        task.cancel()
