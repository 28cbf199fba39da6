"""Stop signals for the command line's long-running commands, without locks.

A Python signal handler runs in the main thread between two bytecodes of whatever it
interrupted. If it takes a lock that code may hold (threading.Event.set() takes the Event's
Condition, which the main thread holds while it waits on the same Event), it deadlocks; two
signals microseconds apart made `refdesk up` hang that way (issue 13, finding 7). So the
handler here only assigns an attribute, and the main thread is woken by a byte the C-level
handler writes to a socket (`signal.set_wakeup_fd`) before any Python code runs.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any


class Interrupted(Exception):
    """A stop signal arrived while something was still starting."""


Check = Callable[[], bool]
"""Whether a stop was asked for (polled by loops that would otherwise wait a long time)."""


class StopSignals:
    """SIGINT and SIGTERM as a flag and a wakeup, for the main thread, while in a `with`."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)):
        self.signals = signals
        self.received: int | None = None
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous: dict[signal.Signals, Any] = {}
        self._previous_fd = -1

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # An assignment only: no lock, no I/O, nothing that can wait on the interrupted code.
        self.received = signum

    def __enter__(self) -> StopSignals:
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()

    def is_set(self) -> bool:
        """Whether SIGINT or SIGTERM arrived."""
        return self.received is not None

    def check(self) -> None:
        """Interrupted if a stop signal arrived."""
        if self.received is not None:
            raise Interrupted(signal.Signals(self.received).name)

    def sleep(self, seconds: float) -> bool:
        """Wait up to `seconds`, returning early on a stop signal; whether one arrived."""
        if self.received is None:
            with contextlib.suppress(InterruptedError):
                select.select([self._reader], [], [], seconds)
            with contextlib.suppress(BlockingIOError):
                while self._reader.recv(512):
                    pass
        return self.received is not None
