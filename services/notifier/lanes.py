"""Delivery lanes: one worker per channel claims due ledger rows and delivers them concurrently.

Up to `notifier_lane_concurrency` deliveries are in flight per lane, never two of one
conversation, so a conversation's notifications still go out one after another in the order
they became due (a hand-off before its survey). Due rows are leased several at a time in one
transaction: while a lane drains a backlog it claims once a quarter of its slots are free, not
after every delivery, and an urgent command (a crisis alert) is claimed as soon as it is
recorded. Each claimed row is delivered by the Deliverer (delivery.py) while the lane holds its
lease; a delivery whose outcome was not recorded is attempted again once the lease runs out.
Retries are rows scheduled for later, never sleeps, so one failing notification does not hold
up the others. Every poll interval the lane also announces the outcomes whose announcement was
lost (outcomes.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.notifier import ledger
from shared.clock import woken
from shared.events import Channel

if TYPE_CHECKING:
    from services.notifier.delivery import Deliverer

log = logging.getLogger(__name__)


class LaneWake:
    """One wake-up flag per lane: set() raises them all, and a lane clears only its own."""

    def __init__(self) -> None:
        self._flags: dict[Channel, asyncio.Event] = {}

    def flag(self, channel: Channel) -> asyncio.Event:
        """The flag a lane waits on."""
        return self._flags.setdefault(channel, asyncio.Event())

    def set(self, channel: Channel | None = None) -> None:
        """New work may be due: wake that channel's lane, or every lane."""
        if channel is not None:
            self.flag(channel).set()
            return
        for flag in self._flags.values():
            flag.set()


@dataclass
class Lane:
    """One channel's worker: claims its due rows with a lease and has the Deliverer deliver
    them, several at a time."""

    deliverer: Deliverer
    channel: Channel

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver due notifications of the channel until told to stop, several at a time, and
        announce lost outcomes every poll interval.

        On stop, no more rows are claimed and the deliveries in flight are finished, so no
        lease is left behind.
        """
        deliverer, channel = self.deliverer, self.channel
        settings = deliverer.settings
        flag = deliverer.wake.flag(channel)
        limit = settings.notifier_lane_concurrency
        refill = max(1, limit // 4)
        in_flight: dict[str, asyncio.Task[None]] = {}  # conversation id -> its delivery
        backlog = False  # whether due rows may have been left behind by the last claim
        full = False  # whether the last claim took all it asked for: more are likely due
        next_sweep = time.monotonic()

        def finished(conversation: str, _task: asyncio.Task[None]) -> None:
            in_flight.pop(conversation, None)
            if backlog:  # a slot (or that conversation) is free for what was left behind
                flag.set()

        try:
            while not stopping.is_set():
                # Cleared before claiming, not after: a wake-up that arrives meanwhile (a new
                # row, a finished delivery) is kept, so nothing waits for the poll interval.
                flag.clear()
                free = limit - len(in_flight)
                urgent = channel in deliverer.urgent
                # Draining a backlog, a claim waits until a quarter of the slots are free: a
                # unit of ledger work per few deliveries, not one per delivery. A newly
                # recorded urgent command and new work on a lane that had caught up are claimed
                # at once.
                if free <= 0 or (full and in_flight and free < refill and not urgent):
                    backlog = True
                else:
                    deliverer.urgent.discard(channel)
                    claim = await self.claim(free, list(in_flight))
                    backlog = claim.more
                    full = len(claim.entries) == free
                    for entry in claim.entries:
                        conversation = entry.command.conversation_id
                        task = asyncio.create_task(self._deliver_claimed(entry))
                        in_flight[conversation] = task
                        task.add_done_callback(functools.partial(finished, conversation))
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + settings.poll_interval_s
                    await self._sweep()
                await woken(flag, settings.poll_interval_s)
            if in_flight:
                await asyncio.wait(list(in_flight.values()))
        finally:
            for task in list(in_flight.values()):
                task.cancel()

    async def claim(self, free: int, busy: list[str]) -> ledger.Claim:
        """Lease up to `free` due rows, none of the `busy` conversations (nothing when the
        ledger cannot be reached)."""
        deliverer = self.deliverer
        try:
            return await deliverer.work.run(
                functools.partial(
                    ledger.claim,
                    channel=self.channel.value,
                    limit=free,
                    busy=busy,
                    lease_s=deliverer.settings.lease_s,
                    now=deliverer.now(),
                )
            )
        except Exception as exc:  # the database may be briefly unavailable
            log.warning(
                "lane iteration failed",
                extra={"channel": self.channel.value, "error": type(exc).__name__},
            )
            return ledger.Claim([], more=False)

    async def _sweep(self) -> None:
        try:
            await self.deliverer.announcer.announce_lost(self.channel)
        except Exception as exc:  # the database may be briefly unavailable
            log.warning(
                "announcing lost outcomes failed",
                extra={"channel": self.channel.value, "error": type(exc).__name__},
            )

    async def _deliver_claimed(self, entry: ledger.Entry) -> None:
        try:
            await self.deliverer.deliver(entry)
        except Exception as exc:  # its lease runs out and the row is attempted again
            log.warning(
                "delivery outcome not recorded",
                extra={
                    "conversation_id": entry.command.conversation_id,
                    "notification": entry.key,
                    "error": type(exc).__name__,
                },
            )
