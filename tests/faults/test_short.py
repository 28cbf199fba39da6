"""The short fault subset (also part of `make test`, marker short_faults): one kill -9 of each
service during a few hundred interactions, a poison message on every consumed topic, a
10-second SMTP outage and the broker frozen for 2.5 s, all against one deployment of real
processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from services.notifier.settings import NotifierSettings
from tests.eventually import eventually
from tests.faults import report
from tests.faults.faults import (
    dead_letters,
    kill_at,
    new_tag,
    poison_bodies,
    publish_raw,
    queue_ids,
)
from tests.faults.system import SERVICES, System, ledger_summary
from tests.faults.traffic import Outcome, Progress, drive, flatten, make_traffic, settle
from tests.kafka_helpers import group_lag

pytestmark = [pytest.mark.short_faults, pytest.mark.timeout(600)]
LANES = 3  # email, sms, chat
IN_FLIGHT = NotifierSettings.model_fields["notifier_lane_concurrency"].default
"""Deliveries in flight per lane: a notifier kill may leave each of them sent but unrecorded."""


def assert_clean(outcome: Outcome, *, notifier_kills: int = 0) -> None:
    assert outcome.lost == 0, f"{outcome.lost} interactions lost, e.g. {outcome.missing[:5]}"
    assert outcome.duplicate_decisions == 0
    assert outcome.reordered == 0
    assert outcome.duplicated <= LANES * IN_FLIGHT * notifier_kills


async def test_kill_9_each_service_once(system: System) -> None:
    convs = make_traffic(400)
    items = flatten(convs)
    killed: list[str] = []
    plan = [(60 * (i + 1), name) for i, name in enumerate(SERVICES)]
    await drive(system, convs, during=kill_at(system, plan, killed))
    outcome = await settle(system, items, "kill -9 each service once (short)")
    report.add(outcome.row(), full=False)
    assert killed == list(SERVICES)
    assert_clean(outcome, notifier_kills=1)
    chats = {i.conversation for i in items if i.channel == "chat"}

    async def all_queued() -> bool:
        return chats <= {row["conversation_id"] for row in await queue_ids(system)}

    await eventually(all_queued, "every conversation in the status queue", timeout=120, every=1.0)


@pytest.mark.parametrize(
    ("topic", "groups"),
    [
        ("refdesk.interactions", {"refdesk-ingest", "refdesk-router", "refdesk-status"}),
        ("refdesk.routing", {"refdesk-status"}),
        ("refdesk.notifications", {"refdesk-notifier"}),
    ],
)
async def test_poison_lands_in_the_dlq_and_the_consumers_keep_going(
    system: System, topic: str, groups: set[str]
) -> None:
    tag = new_tag()
    await publish_raw(system.bootstrap, topic, poison_bodies(tag), key=f"poison-{tag}")

    async def both_dead_lettered_by_every_group() -> bool:
        letters = await dead_letters(system.bootstrap, topic, tag)
        return {(g, n) for g in groups for n in range(2)} <= {
            (d["consumer_group"], 0 if d["value"].startswith("not json") else 1) for d in letters
        }

    await eventually(
        both_dead_lettered_by_every_group,
        "both poison records dead-lettered by every group",
        timeout=120,
        every=1.0,
    )
    letters = await dead_letters(system.bootstrap, topic, tag)
    assert all(d["reason"] and d["topic"] == topic for d in letters)
    assert any("not a CloudEvent" in d["reason"] for d in letters)
    assert any("invalid" in d["reason"] for d in letters)
    # the consumers went on: new traffic still goes all the way through
    convs = make_traffic(20)
    await drive(system, convs)
    outcome = await settle(system, flatten(convs), f"poison on {topic}", timeout=180)
    report.add(outcome.row(), full=False)
    assert_clean(outcome)


async def test_poison_presence_is_ignored_by_the_router(system: System) -> None:
    """The router folds presence without a group or DLQ (by design); nobody else consumes it."""
    tag = new_tag()
    await publish_raw(system.bootstrap, "refdesk.presence", poison_bodies(tag), key=f"poison-{tag}")
    convs = make_traffic(20)
    await drive(system, convs)
    outcome = await settle(system, flatten(convs), "poison on refdesk.presence", timeout=180)
    report.add(outcome.row(), full=False)
    assert_clean(outcome)
    assert all(p.poll() is None for p in system.stack.processes.values())
    assert await dead_letters(system.bootstrap, "refdesk.presence", tag) == []


async def test_smtp_down_10_s(system: System) -> None:
    convs = make_traffic(100, sms_every=1000)

    async def outage(progress: object) -> None:
        await asyncio.sleep(1)
        await asyncio.to_thread(system.smtp.stop)
        await asyncio.sleep(10)
        await asyncio.to_thread(system.smtp.start)

    await drive(system, convs, during=outage)
    outcome = await settle(system, flatten(convs), "SMTP down 10 s (short)", timeout=180)
    report.add(outcome.row(), full=False)
    assert_clean(outcome)
    assert (await ledger_summary(system))["pending"] == 0
    await eventually(lambda: _no_lag(system), "no consumer lag", timeout=60, every=1.0)


async def _no_lag(system: System) -> bool:
    return await group_lag(system.bootstrap, "refdesk-notifier", "refdesk.notifications") == 0


FROZEN_S = 2.5
"""Longer than the 1 s after which a publish's acknowledgement is logged as slow, shorter
than ingest's 4 s wait before it answers 503 and the consumers' 10 s session timeout."""


async def test_a_frozen_broker_delays_without_losing_and_the_services_say_so(
    system: System,
) -> None:
    """The broker stopped (SIGSTOP) for FROZEN_S, as a long pause of its JVM or its host would,
    while texts and chats arrive: every interaction arrives once, and the services that were
    waiting on it log the slow acknowledgement with figures only."""
    convs = make_traffic(120, sms_every=4)
    pid = system.kafka.process.pid if system.kafka.process else None
    assert pid is not None

    async def freeze(progress: Progress) -> None:
        # while traffic flows (a fast machine sends all of it within a second or two): the
        # requests in flight then wait on the frozen broker's acknowledgements
        await eventually(lambda: progress.answered >= 20, "the first answers", every=0.01)
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(FROZEN_S)
        finally:
            os.kill(pid, signal.SIGCONT)

    await drive(system, convs, during=freeze)
    items = flatten(convs)
    outcome = await settle(system, items, "broker frozen 2.5 s (short)", timeout=180)
    report.add(outcome.row(), full=False)
    assert_clean(outcome)

    logs = system.stack.run_dir / "logs"
    slow = [
        (path.stem, json.loads(line))
        for path in sorted(logs.glob("*.log"))
        for line in path.read_text(errors="replace").splitlines()
        if "the broker was slow to acknowledge" in line
    ]
    assert "ingest" in {service for service, _ in slow}, "ingest did not log the slow acks"
    assert all(entry["level"] == "warning" and entry["took_ms"] >= 1000 for _, entry in slow)
    figures_only = {"time", "level", "service", "logger", "message", "topics", "records", "took_ms"}
    assert all(set(entry) <= figures_only for _, entry in slow)
