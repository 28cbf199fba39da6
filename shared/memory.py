"""Giving the C heap's free memory back to the system (glibc's `malloc_trim`).

A status replica on PostgreSQL grew by about 17 KB of resident memory per patron message and
had not levelled off after half an hour, with the Python objects it held flat (an outside
review): asyncpg, uvloop and TLS allocate and free many blocks of 10-260 KB in one thread, and
glibc keeps the freed ones inside its heap, in holes between longer-lived blocks, rather than
return them. `malloc_trim(0)` hands those pages back (17.6 MB at once in that review).
Elsewhere than glibc (musl, macOS) there is nothing to call and `trim` does nothing."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def trim() -> bool:
    """Return the heap's free pages to the system; True when any were (False: none, or not
    glibc)."""
    call = _malloc_trim()
    return bool(call(0)) if call is not None else False
