"""`woken`: the one wait for a wake-up or an interval, and a cancel always gets through."""

from __future__ import annotations

import asyncio

import pytest

from shared.clock import woken


async def test_a_set_event_wakes_at_once_and_an_unset_one_waits_out_the_interval() -> None:
    event = asyncio.Event()
    event.set()
    assert await woken(event, 3600) is True  # an hour: the test would hang if it waited
    assert await woken(asyncio.Event(), 0.01) is False


async def test_a_cancel_that_meets_the_wake_up_still_reaches_the_waiter() -> None:
    """The ordering Python 3.11's wait_for gets wrong: the event is set, the waiter's task is
    cancelled, and both land in the same loop iteration."""
    event = asyncio.Event()
    started = asyncio.Event()

    async def loop() -> None:
        while True:  # a service's loop: only a cancel ends it
            started.set()
            await woken(event, 3600)

    task = asyncio.create_task(loop())
    await started.wait()
    event.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
