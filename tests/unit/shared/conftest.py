"""Logging as a test found it: tests that configure refdesk's logging put a handler on the
root logger writing to the stream pytest lent them, which pytest closes after the test; a
record logged later on the same worker (a database thread's debug line under another test's
caplog) then printed "--- Logging error --- I/O operation on closed file" in the run."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from shared import logs


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    if logs._teller is not None:
        logs._teller.stopped.set()
        logs._teller = None
    root.handlers[:] = handlers
    root.setLevel(level)
