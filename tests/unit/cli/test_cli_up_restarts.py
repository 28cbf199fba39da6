"""`refdesk up` starts again a service that exited on its own, and stops everything only when
one keeps exiting (a killed notifier had taken the whole stack down with it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from refdesk_cli.stack import Stack
from refdesk_cli.up import Restarts, restart_exited


class RecordingStack(Stack):
    """A stack whose services are short-lived child processes; starts are recorded."""

    started: list[str]

    def start(self, name: str) -> subprocess.Popen[bytes]:
        self.started.append(name)
        proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(9)"])
        proc.wait()
        self.processes[name] = proc
        return proc


def stack_with(tmp_path: Path, **codes: int | None) -> RecordingStack:
    stack = RecordingStack(run_dir=tmp_path, env={})
    stack.started = []
    for name, code in codes.items():
        script = "import time; time.sleep(30)" if code is None else f"raise SystemExit({code})"
        proc = subprocess.Popen([sys.executable, "-c", script])
        if code is not None:
            proc.wait()
        stack.processes[name] = proc
    return stack


def test_an_exited_service_is_started_again_and_the_others_keep_running(tmp_path: Path) -> None:
    stack = stack_with(tmp_path, notifier=-9, ingest=None)
    try:
        assert restart_exited(stack, Restarts(), now=0.0) is None
        assert stack.started == ["notifier"]
        assert stack.processes["ingest"].poll() is None  # never touched
    finally:
        stack.processes["ingest"].kill()
        stack.processes["ingest"].wait()


def test_a_service_that_keeps_exiting_stops_everything(tmp_path: Path) -> None:
    stack = stack_with(tmp_path, router=1)
    restarts = Restarts(limit=3, window_s=60.0)
    assert restart_exited(stack, restarts, now=0.0) is None
    assert restart_exited(stack, restarts, now=5.0) is None
    looping = restart_exited(stack, restarts, now=10.0)
    assert looping is not None and looping.startswith("router exited 3 times within 60 s")
    assert str(tmp_path / "logs" / "router.log") in looping
    assert stack.started == ["router", "router"]


def test_exits_far_apart_are_no_loop() -> None:
    restarts = Restarts(limit=3, window_s=60.0)
    assert all(restarts.may_restart("status", now) for now in (0.0, 50.0, 100.0, 200.0, 300.0))
    assert restarts.may_restart("status", 301.0)
    assert not restarts.may_restart("status", 302.0)
