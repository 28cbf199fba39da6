"""The broker killed and restarted during webhook traffic; the SMTP server down for 60 s."""

from __future__ import annotations

import asyncio

import pytest

from tests.eventually import eventually
from tests.faults import report
from tests.faults.system import System, ledger_summary
from tests.faults.test_short import assert_clean
from tests.faults.traffic import Progress, drive, flatten, make_traffic, settle
from tests.kafka_helpers import group_lag

pytestmark = pytest.mark.timeout(900)


async def test_broker_killed_and_restarted_during_webhooks(system: System) -> None:
    convs = make_traffic(1500)
    items = flatten(convs)

    async def bounce(progress: Progress) -> None:
        while progress.answered < 400:
            await asyncio.sleep(0.1)
        await asyncio.to_thread(system.kafka.kill)
        await asyncio.sleep(10)
        await asyncio.to_thread(system.kafka.start)
        await asyncio.to_thread(system.kafka.wait_ready)

    await drive(system, convs, during=bounce)
    answers = [s for item in items for s in item.statuses]
    refused = [i for i in items if 503 in i.statuses]
    assert refused, "no webhook was answered 503: the outage missed the traffic"
    assert set(answers) <= {200, 503}, f"answers other than 200 and 503: {set(answers)}"
    # every item ended with a 2xx (drive retries each until then); now each must be in the
    # topic, and every routed interaction delivered, though the consumers lost their broker
    outcome = await settle(system, items, "broker kill -9 and restart")
    report.add(outcome.row(), full=True)
    assert_clean(outcome)


async def test_smtp_down_60_s(system: System) -> None:
    convs = make_traffic(400, sms_every=1000)
    items = flatten(convs)
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(system.smtp.stop)
    down = loop.time()
    await drive(system, convs)
    await asyncio.sleep(max(0.0, 60 - (loop.time() - down)))
    await asyncio.to_thread(system.smtp.start)
    back = loop.time()

    async def nothing_pending() -> bool:
        return (await ledger_summary(system))["pending"] == 0

    await eventually(
        nothing_pending, "no notification pending after SMTP returned", timeout=60, every=1.0
    )
    drained_after = loop.time() - back
    outcome = await settle(system, items, "SMTP down 60 s", timeout=120)
    report.add(outcome.row(), full=True)
    assert drained_after <= 60
    assert_clean(outcome)
    assert (await ledger_summary(system))["dead"] == 0
    assert await group_lag(system.bootstrap, "refdesk-notifier", "refdesk.notifications") == 0
