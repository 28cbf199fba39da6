"""The SMS lane of a Deliverer over a real SQLite ledger, with a fake Twilio that creates
messages and lists them: the lane the SMS tests drive, one claim at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deliverer_fakes import (
    Clock,
    FakeEmail,
    FakePublisher,
    FakeSmsProvider,
    FakeTexts,
    drain,
)

from services.notifier import tables
from services.notifier.delivery import Deliverer
from services.notifier.outgoing import Adapters
from services.notifier.settings import NotifierSettings
from shared.db import create_engine
from shared.events import Channel, NotificationDelivered
from shared.syncdb import UnitRunner
from shared.topics import DELIVERIES


@dataclass
class Lane:
    """A Deliverer's SMS lane and its fakes; `restart()` is a new process on the same ledger."""

    settings: NotifierSettings
    url: str
    clock: Clock = field(default_factory=Clock)
    sms: FakeSmsProvider = field(init=False)
    email: FakeEmail = field(default_factory=FakeEmail)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    deliverer: Deliverer = field(init=False)

    def __post_init__(self) -> None:
        self.sms = FakeSmsProvider(self.clock)
        self.deliverer = self._start()

    def _start(self) -> Deliverer:
        return Deliverer(
            settings=self.settings,
            adapters=Adapters(email=self.email, sms=self.sms, chat=FakeTexts()),
            publisher=self.publisher,
            db=UnitRunner(create_engine(self.url), name="test-ledger"),
            clock=self.clock,
        )

    def restart(self) -> None:
        self.deliverer = self._start()

    async def drain(self, channel: Channel = Channel.SMS) -> None:
        """Deliver everything due on the lane, one claim after another."""
        await drain(self.deliverer, channel)

    async def later(self, seconds: float) -> None:
        """Let time pass (a retry's backoff, a dead worker's lease), then drain again."""
        self.clock.advance(seconds)
        await self.drain()

    def outcomes(self) -> list[NotificationDelivered]:
        return [
            e for e in self.publisher.on(DELIVERIES.name) if isinstance(e, NotificationDelivered)
        ]

    async def row(self, key: str) -> Any:
        return await self.deliverer.db(
            lambda conn: conn.execute(
                tables.ledger.select().where(tables.ledger.c.idempotency_key == key)
            ).one()
        )
