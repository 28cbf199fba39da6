"""Tiny fakes of the Deliverer's ports: senders that remember (or fail as told), an SMS
provider that creates messages and lists them (or loses its answer, as Twilio's can be lost), a
publisher that remembers (or is down, or dies mid-call), a hand-moved clock; and `drain`, which
delivers what is due on a lane as the lane's workers would, one claim after another."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from pydantic import BaseModel

from services.notifier import ledger
from services.notifier.delivery import Deliverer
from services.notifier.mime import Email
from shared.events import Channel, derived_id

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
LEASE_S = 60.0


async def drain(d: Deliverer, channel: Channel) -> None:
    """Deliver everything due on a lane, one claim after another."""
    while True:
        claim = await d.db(
            functools.partial(
                ledger.claim, channel=channel.value, limit=8, busy=[], lease_s=LEASE_S, now=d.now()
            )
        )
        if not claim.entries:
            return
        for entry in claim.entries:
            await d.deliver(entry)


class Crash(BaseException):
    """The process died here (nothing after it runs, not even `except Exception`)."""


@dataclass
class FakeEmail:
    sent: list[EmailMessage] = field(default_factory=list)
    """What the relay got, parsed as a mail client reads it."""
    failures: list[Exception] = field(default_factory=list)
    """Raised, one per send, before anything is sent."""

    async def send(self, mail: Email) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(mail.message())

    async def close(self) -> None:
        return None


@dataclass
class FakeTexts:
    """An SMS or chat sender: (recipient, body, key) per message; the provider's id back."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def _take(self, to: str, body: str, key: str) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((to, body, key))
        return "SM" + derived_id("fake", key).replace("-", "")

    async def send(
        self,
        *,
        body: str,
        idempotency_key: str,
        to: str | None = None,
        conversation_id: str | None = None,
        kind: str | None = None,
        requested_at: datetime | None = None,
        staff_id: str | None = None,
    ) -> str:
        return self._take(to or conversation_id or "", body, idempotency_key)

    async def find_sent(
        self,
        *,
        to: str,
        body: str,
        idempotency_key: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> str | None:
        return None


@dataclass(frozen=True)
class Step:
    """What the SMS provider does with one create: whether it creates the message, and what
    the notifier then gets instead of its answer (None: the answer)."""

    creates: bool = True
    then: BaseException | None = None


def refuse(exc: BaseException) -> Step:
    """The create fails before any message exists."""
    return Step(creates=False, then=exc)


def lose_answer(exc: BaseException) -> Step:
    """The message is created; its answer never reaches the notifier (a timeout, a crash)."""
    return Step(creates=True, then=exc)


@dataclass(frozen=True)
class Texted:
    sid: str
    to: str
    body: str
    key: str
    created: datetime


@dataclass
class FakeSmsProvider:
    """Twilio's Messages API as the SMS lane sees it: what it created (the patron's phone),
    listed for a lookup with whole-second creation times."""

    clock: Clock
    created: list[Texted] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    """One per create, in order; a create past the list succeeds."""
    steps_to: dict[str, list[Step]] = field(default_factory=dict)
    """One per create to that number, taken before `steps` (one patron's texts answered
    apart from the others sent meanwhile)."""
    attempts: list[str] = field(default_factory=list)
    """The key of each create asked for, whatever it was answered."""
    lookups: list[str] = field(default_factory=list)
    """The key of each lookup."""
    lookup_failures: list[Exception] = field(default_factory=list)
    """Raised, one per lookup."""

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        self.attempts.append(idempotency_key)
        own = self.steps_to.get(to)
        step = own.pop(0) if own else self.steps.pop(0) if self.steps else Step()
        sid = "SM" + derived_id("fake-sms", str(len(self.created)), body).replace("-", "")
        if step.creates:
            at = self.clock().replace(microsecond=0)
            self.created.append(Texted(sid, to, body, idempotency_key, at))
        if step.then is not None:
            raise step.then
        return sid

    async def find_sent(
        self,
        *,
        to: str,
        body: str,
        idempotency_key: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> str | None:
        self.lookups.append(idempotency_key)
        if self.lookup_failures:
            raise self.lookup_failures.pop(0)
        for text in reversed(self.created):
            if (text.to, text.body) == (to, body) and text.created >= since:
                if text.sid not in exclude:
                    return text.sid
        return None

    def bodies(self) -> list[str]:
        return [t.body for t in self.created]


@dataclass
class FakePublisher:
    published: list[tuple[str, BaseModel, str, str]] = field(default_factory=list)
    """(topic, data, key, event_id) of every publish the broker acknowledged."""
    down: set[str] = field(default_factory=set)
    """Topics whose publishes fail (the broker does not acknowledge)."""
    dies_on: set[str] = field(default_factory=set)
    """Topics whose publish kills the process."""

    async def __call__(self, topic: str, data: BaseModel, *, key: str, event_id: str) -> None:
        if topic in self.dies_on:
            raise Crash(topic)
        if topic in self.down:
            raise ConnectionError("broker down")
        self.published.append((topic, data, key, event_id))

    def on(self, topic: str) -> list[BaseModel]:
        return [data for t, data, _, _ in self.published if t == topic]


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
