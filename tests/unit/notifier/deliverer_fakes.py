"""Tiny fakes of the Deliverer's ports: senders that remember (or fail as told), a publisher
that remembers (or is down, or dies mid-call), a hand-moved clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from pydantic import BaseModel

from services.notifier.mime import Email
from shared.events import derived_id

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


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
    ) -> str:
        return self._take(to or conversation_id or "", body, idempotency_key)


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
