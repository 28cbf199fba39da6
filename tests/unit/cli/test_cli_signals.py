"""Stop signals without locks (issue 13, finding 7), and `refdesk up`'s ports (finding 6).

A signal can land between any two bytecodes, including those of its own handler. The check
below runs a handler as if a signal arrived at every line it executes (nested three deep): a
handler that takes a lock deadlocks there (threading.Event.set(), what `refdesk up` used), one
that only assigns returns.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from refdesk_cli.signals import Interrupted, StopSignals
from refdesk_cli.stack import SERVICES, Stack, configured_ports

Handler = Callable[[int, FrameType | None], Any]


def survives_signals_everywhere(handler: Handler, *, depth: int = 3, wait_s: float = 5.0) -> bool:
    """Whether `handler` returns (within `wait_s`) when re-entered at every line it runs (as a
    signal could)."""
    level = 0

    def tracer(frame: FrameType, event: str, _arg: Any) -> Any:
        nonlocal level
        if event == "line" and level < depth:
            level += 1
            handler(signal.SIGTERM, None)
            level -= 1
        return tracer

    def run() -> None:
        sys.settrace(tracer)
        try:
            handler(signal.SIGINT, None)
        finally:
            sys.settrace(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=wait_s)
    return not worker.is_alive()


def test_a_lock_taking_handler_deadlocks_when_a_signal_lands_inside_it() -> None:
    # what `refdesk up` did: the check above catches it deterministically
    event = threading.Event()
    # a deadlock never ends: a second is as good a proof as five
    assert not survives_signals_everywhere(lambda *_: event.set(), wait_s=1.0)


def test_the_stop_handler_survives_signals_anywhere() -> None:
    stop = StopSignals()
    assert survives_signals_everywhere(stop._handle)
    assert stop.is_set()


BURST = """
import os, signal, threading, time
from refdesk_cli.signals import Interrupted, StopSignals

# Python's own SIGINT handler, whatever this process inherited (a job started in the
# background of a non-interactive shell inherits SIGINT ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
with StopSignals() as stop:
    assert not stop.sleep(0.01)
    sender = threading.Thread(
        target=lambda: [
            os.kill(os.getpid(), (signal.SIGINT, signal.SIGTERM)[i % 2]) for i in range(200)
        ]
    )
    started = time.monotonic()
    sender.start()
    assert stop.sleep(30)
    sender.join()
    assert time.monotonic() - started < 10
    try:
        stop.check()
    except Interrupted:
        pass
    else:
        raise AssertionError("check() did not raise")
    time.sleep(0.2)  # let the main thread run every handler the burst left pending
restored = signal.getsignal(signal.SIGINT) is signal.default_int_handler
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("woken" if restored else "not restored")
"""


def test_a_burst_of_signals_wakes_the_sleeper_at_once() -> None:
    # In its own process: a signal of the burst still pending when the handlers are restored
    # would raise KeyboardInterrupt in whatever test ran next in this worker.
    done = subprocess.run(
        [sys.executable, "-c", BURST], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "woken"


def test_stop_signals_restores_the_previous_handlers() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    previous_int = signal.getsignal(
        signal.SIGINT
    )  # ignored when the run was started in the background
    with StopSignals() as stop:
        assert signal.getsignal(signal.SIGTERM) == stop._handle
        assert signal.getsignal(signal.SIGINT) == stop._handle
    assert signal.getsignal(signal.SIGINT) == previous_int
    assert signal.getsignal(signal.SIGTERM) == previous


def test_starting_stops_between_steps_when_told(tmp_path: Path) -> None:
    stack = Stack(run_dir=tmp_path, env={})
    with pytest.raises(Interrupted):
        stack.start_all(interrupted=lambda: True)
    assert stack.processes == {}


def test_refdesk_up_honours_each_services_port_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # issue 13, finding 6: `refdesk up` wrote the default ports over REFDESK_*_PORT
    monkeypatch.setenv("REFDESK_ROUTER_PORT", "18082")
    monkeypatch.setenv("REFDESK_STATUS_PORT", "18084")
    stack = Stack(run_dir=tmp_path, env={})
    assert stack.ports == {**configured_ports({}), "router": 18082, "status": 18084}
    assert stack.environment("router")["REFDESK_ROUTER_PORT"] == "18082"
    assert stack.url("status") == "http://127.0.0.1:18084"
    assert configured_ports({}) == {name: port for name, (_, port) in SERVICES.items()}
    with pytest.raises(ValueError, match="REFDESK_INGEST_PORT"):
        configured_ports({"REFDESK_INGEST_PORT": "http"})
