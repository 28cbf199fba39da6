"""`shared.memory.trim` gives the C heap's free pages back where the C library is glibc (a
status replica's resident memory had grown with every patron message), and does nothing
elsewhere."""

from __future__ import annotations

import os
import platform

import pytest

from shared import memory


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_blocks_go_back_to_the_system() -> None:
    assert memory._malloc_trim() is not None
    # blocks under glibc's mmap threshold live in the heap, their pages written (resident);
    # freed below a block still held, they stay resident until trimmed
    held = [b"x" * 100_000 for _ in range(400)]
    keep = b"y" * 100_000
    del held
    before = _resident_bytes()
    assert memory.trim() is True
    given_back = before - _resident_bytes()
    assert given_back > 20_000_000, given_back
    assert len(keep) == 100_000


def test_without_glibc_nothing_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.trim() is False
