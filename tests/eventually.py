"""The one way a test waits: `eventually(check, what)` polls until check holds, or fails
saying what it waited for, for how long, and what it saw last. Tests never sleep to wait."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], T] | Callable[[], Awaitable[T]],
    what: str,
    *,
    timeout: float = 60.0,
    every: float = 0.1,
) -> T:
    """Call `check` (sync or async) until it returns something truthy and return that;
    AssertionError naming `what` and the last value seen after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last: Any = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            seen = repr(last)
            seen = seen if len(seen) <= 300 else seen[:300] + "..."
            raise AssertionError(f"waited {timeout:g} s for {what}; last saw {seen}")
        await asyncio.sleep(every)
