"""A lane's claims while it drains a backlog, through a relay that answers when told: a claim
waits for a quarter of the lane's slots (a unit of ledger work per few deliveries, not one per
delivery), while a newly recorded urgent command, or new work once the lane has caught up, is
claimed at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deliverer_fakes import FakePublisher, FakeTexts

from services.notifier import lanes, ledger
from services.notifier.delivery import Deliverer
from services.notifier.mime import Email
from services.notifier.outgoing import Adapters
from services.notifier.settings import NotifierSettings
from shared.db import create_engine
from shared.events import (
    Channel,
    NotificationKind,
    NotificationRequested,
    Priority,
    StaffReplyContext,
)
from shared.syncdb import UnitRunner
from tests.eventually import eventually

SLOTS = 8
"""The lane's concurrency here: a claim under backlog waits for SLOTS // 4 free slots."""


@dataclass
class GatedRelay:
    """An email sender whose sends finish only when released, in the order they began."""

    began: list[str] = field(default_factory=list)
    """Recipients, as each send began."""
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(0))

    async def send(self, mail: Email) -> None:
        self.began.append(mail.recipients[0])
        await self.gate.acquire()

    def release(self, n: int) -> None:
        for _ in range(n):
            self.gate.release()

    async def close(self) -> None:
        return None


class CountedFlag(asyncio.Event):
    """The lane's wake-up flag, counting the lane's looks at its slots (it clears the flag
    before each look, then decides at once whether to claim)."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    def clear(self) -> None:
        self.looks += 1
        super().clear()


@dataclass
class Lane:
    deliverer: Deliverer
    relay: GatedRelay
    flag: CountedFlag
    claims: list[int] = field(default_factory=list)
    """Free slots each claim asked for."""


@pytest.fixture
async def lane(tmp_path: Path, ledger_url: str) -> AsyncIterator[Lane]:
    settings = NotifierSettings(
        run_dir=tmp_path,
        poll_interval_s=30,  # no periodic claims: only wake-ups move the lane
        notifier_lane_concurrency=SLOTS,
        message_id_domain="refdesk.tccd.edu",
    )
    relay = GatedRelay()
    deliverer = Deliverer(
        settings=settings,
        adapters=Adapters(email=relay, sms=FakeTexts(), chat=FakeTexts()),
        publisher=FakePublisher(),
        db=UnitRunner(create_engine(ledger_url), name="test-ledger"),
    )
    flag = CountedFlag()
    deliverer.wake._flags[Channel.EMAIL] = flag  # the flag `LaneWake.flag` hands the lane
    made = Lane(deliverer, relay, flag)
    worker = lanes.Lane(deliverer, Channel.EMAIL)
    claim = worker.claim

    async def counted(free: int, busy: list[str]) -> ledger.Claim:
        made.claims.append(free)
        return await claim(free, busy)

    worker.claim = counted  # type: ignore[method-assign]
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping))
    await until(lambda: made.claims == [SLOTS], "the lane's first look, at an empty ledger")
    made.claims.clear()
    yield made
    stopping.set()
    deliverer.wake.set()
    relay.release(1_000)
    await asyncio.wait_for(task, 10)
    await deliverer.close()


def reply(n: int, priority: Priority = Priority.NORMAL) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=f"reply-{n}",
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.EMAIL,
        priority=priority,
        recipient=f"patron{n}@my.tccd.edu",
        conversation_id=f"conv-{n}",
        context=StaffReplyContext(
            reply_id=f"r-{n}", staff_id="jdoe", text="The book is on hold at NW until Friday."
        ).model_dump(mode="json"),
        requested_at=datetime(2026, 12, 1, 14, 0, tzinfo=UTC),
    )


async def until(check: Callable[[], bool], what: str) -> None:
    """`eventually`, polling often: each wait here is for a step of the lane."""
    await eventually(check, what, timeout=10, every=0.01)


async def arrive(lane: Lane, commands: list[NotificationRequested]) -> None:
    """Commands recorded as the consumer records them, waking the lane."""
    for channel in await lane.deliverer.record(commands):
        lane.deliverer.wake.set(channel)


async def finish_one(lane: Lane) -> None:
    """Let one delivery finish, and wait until the lane it woke has looked at its slots (and
    claimed, were it going to)."""
    looks = lane.flag.looks
    lane.relay.release(1)
    await until(lambda: lane.flag.looks > looks, "the lane's next look at its slots")


async def test_draining_a_backlog_a_claim_waits_for_a_quarter_of_the_slots(lane: Lane) -> None:
    await arrive(lane, [reply(n) for n in range(40)])
    await until(lambda: len(lane.relay.began) == SLOTS, "every slot sending")
    assert lane.claims == [SLOTS]

    await finish_one(lane)  # one slot free: not yet worth a unit of ledger work
    assert lane.claims == [SLOTS] and len(lane.relay.began) == SLOTS

    await finish_one(lane)  # a quarter free: both taken in one claim
    await until(lambda: len(lane.relay.began) == SLOTS + 2, "two more sends")
    assert lane.claims == [SLOTS, 2]

    lane.relay.release(40)
    await until(lambda: len(lane.relay.began) == 40, "all 40 sends")
    assert len(lane.claims) <= 1 + 40 // 2, lane.claims


async def test_a_new_urgent_command_is_claimed_at_once_into_the_one_free_slot(lane: Lane) -> None:
    await arrive(lane, [reply(n) for n in range(40)])
    await until(lambda: len(lane.relay.began) == SLOTS, "every slot sending")
    await finish_one(lane)
    assert lane.claims == [SLOTS]
    crisis = reply(99, Priority.URGENT)
    await arrive(lane, [crisis])
    await until(lambda: crisis.recipient in lane.relay.began, "the crisis alert sending")
    assert lane.claims == [SLOTS, 1]


async def test_new_work_on_a_lane_that_caught_up_is_claimed_at_once(lane: Lane) -> None:
    await arrive(lane, [reply(n) for n in range(SLOTS - 1)])  # fewer than the lane asked for
    await until(lambda: len(lane.relay.began) == SLOTS - 1, "the first sends")
    await arrive(lane, [reply(50)])
    await until(lambda: len(lane.relay.began) == SLOTS, "every slot sending")
    assert lane.claims == [SLOTS, 1]
