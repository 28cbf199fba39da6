"""SIGTERM of each service under load, and two router instances in one group, one killed."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.faults import report
from tests.faults.system import SERVICES, System
from tests.faults.test_short import assert_clean
from tests.faults.traffic import Progress, drive, flatten, make_traffic, settle

pytestmark = pytest.mark.timeout(900)
EXIT_WITHIN_S = 10.0  # the spec: a service exits within 10 s of SIGTERM


async def test_sigterm_each_service_under_load(system: System) -> None:
    convs = make_traffic(1500)
    items = flatten(convs)
    exits: dict[str, float] = {}

    async def terminate(progress: Progress) -> None:
        for i, name in enumerate(SERVICES):
            while progress.answered < 250 * (i + 1):
                await asyncio.sleep(0.1)
            exits[name] = await asyncio.to_thread(
                system.stack.stop, name, sig=signal.SIGTERM, timeout=30
            )
            await asyncio.to_thread(system.restart, name)

    await drive(system, convs, during=terminate)
    outcome = await settle(system, items, "SIGTERM each service under load")
    report.add(outcome.row(), full=True)
    assert_clean(outcome)
    assert outcome.duplicated == 0, "a graceful stop doubled a notification"
    slow = {name: round(s, 1) for name, s in exits.items() if s >= EXIT_WITHIN_S}
    assert not slow, f"services that took 10 s or more to exit: {slow}"


async def test_two_routers_one_killed(system: System) -> None:
    second = await asyncio.to_thread(system.replica, "router")
    convs = make_traffic(1200)
    items = flatten(convs)

    async def kill_first(progress: Progress) -> None:
        while progress.answered < 400:
            await asyncio.sleep(0.1)
        await asyncio.to_thread(system.kill, "router")

    await drive(system, convs, during=kill_first)
    outcome = await settle(system, items, "two routers, one kill -9")
    report.add(outcome.row(), full=True)
    assert second.processes["router"].poll() is None
    assert_clean(outcome)
    await asyncio.to_thread(system.restart, "router")
