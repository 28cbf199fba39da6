"""kill -9 of each service in turn, twice, during 5,000 interactions; then kill -9 of the
notifier in the middle of a batch of pending notifications."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict

import pytest

from tests.faults import report
from tests.faults.faults import kill_at
from tests.faults.system import SERVICES, System
from tests.faults.test_short import IN_FLIGHT, LANES, assert_clean
from tests.faults.traffic import drive, flatten, make_traffic, settle

pytestmark = pytest.mark.timeout(900)
TOTAL = 5000


async def test_kill_9_each_service_twice_during_5000_interactions(system: System) -> None:
    convs = make_traffic(TOTAL)
    items = flatten(convs)
    order = [*SERVICES, *SERVICES]
    step = TOTAL // (len(order) + 1)
    killed: list[str] = []
    await drive(
        system,
        convs,
        concurrency=16,
        during=kill_at(system, [(step * (i + 1), n) for i, n in enumerate(order)], killed),
    )
    outcome = await settle(
        system, items, f"kill -9 x{len(order)} (each service twice), {TOTAL} interactions"
    )
    report.add(outcome.row(), full=True)
    assert killed == order
    assert_clean(outcome, notifier_kills=2)


def refs_to_message_ids(system: System) -> dict[str, set[str]]:
    """Each circulation email's interaction (the "(ref <conversation> s<n>)" it quotes) and the
    Message-IDs it arrived with."""
    found: dict[str, set[str]] = defaultdict(set)
    for msg in list(system.smtp.handler.messages):
        body = msg.get_body(("plain",))
        match = re.search(r"\(ref (\S+ s\d+)\)", body.get_content() if body else "")
        if match:
            found[match.group(1)].add(str(msg["Message-ID"]))
    return found


async def test_kill_9_notifier_mid_batch(system: System) -> None:
    await asyncio.to_thread(system.stack.stop, "notifier")
    convs = make_traffic(600, sms_every=3)
    items = flatten(convs)
    await drive(system, convs)
    mails_before, sms_before = len(system.smtp.handler.messages), len(system.sms.requests)
    kills = 0
    await asyncio.to_thread(system.restart, "notifier")
    for share in (150, 300):
        while (
            len(system.smtp.handler.messages) - mails_before + len(system.sms.requests) - sms_before
            < share
        ):
            await asyncio.sleep(0.05)
        await asyncio.to_thread(system.kill, "notifier")
        kills += 1
        await asyncio.to_thread(system.restart, "notifier")
    outcome = await settle(system, items, "kill -9 notifier mid-batch x2")
    report.add(outcome.row(), full=True)
    assert_clean(outcome, notifier_kills=kills)
    # a duplicate carries the original's Message-ID (email) or idempotency token (SMS)
    for ref, ids in refs_to_message_ids(system).items():
        assert len(ids) == 1, f"{ref} arrived with several Message-IDs: {ids}"
    assert sum(n - 1 for n in outcome.email_copies.values() if n > 1) <= kills * IN_FLIGHT
    assert sum(n - 1 for n in outcome.sms_copies.values() if n > 1) <= kills * IN_FLIGHT
    assert LANES == 3
