"""Tiny fakes for the status service's tests: a publisher that remembers, a hand-moved clock."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status.handlers import Assigning, apply, apply_batch
from shared.events import (
    TYPE_OF,
    Action,
    Channel,
    InteractionReceived,
    Patron,
    Priority,
    RoutingDecided,
)
from tests.fakes import check_carried

T0 = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)


@dataclass
class FakePublisher:
    """Remembers what would have been published."""

    sent: list[tuple[str, BaseModel, str]] = field(default_factory=list)
    event_ids: list[str | None] = field(default_factory=list)
    """The CloudEvent id each record in `sent` was published under (None: a fresh one)."""
    fail: bool = False

    async def __call__(
        self, topic: str, data: BaseModel, *, key: str, event_id: str | None = None
    ) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        check_carried(topic, TYPE_OF[type(data)])
        self.sent.append((topic, data, key))
        self.event_ids.append(event_id)

    def on(self, topic: str) -> list[BaseModel]:
        return [d for t, d, _ in self.sent if t == topic]


@dataclass
class PingedBroker:
    """A broker whose pings the test answers (nothing is published through it): the status
    service asks it whether the broker is there (`resources.broker_answers`)."""

    up: bool = False

    async def ping(self, timeout: float) -> bool:
        return self.up


@dataclass
class Clock:
    """A clock tests move by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def bearer(staff_id: str) -> dict[str, str]:
    """The seed dev token of a staff member as an Authorization header."""
    return {"Authorization": f"Bearer dev-{staff_id}-token"}


def patron_writes(
    cid: str,
    text: str = "help",
    *,
    channel: Channel,
    contact: str | None = None,
    at: datetime = T0,
    key: str | None = None,
) -> InteractionReceived:
    """A patron's message in conversation `cid` (`key`: its ids, when the conversation has more
    than one message; `contact`: the channel's usual test patron when not given)."""
    key = key or cid
    if contact is None:
        contact = "pat@example.edu" if channel == Channel.EMAIL else "+18175550199"
    return InteractionReceived(
        interaction_id=f"i-{key}",
        conversation_id=cid,
        channel=channel,
        provider="test",
        provider_message_id=key,
        patron=Patron(contact=contact),
        text=text,
        received_at=at,
    )


async def arrive(
    sessions: async_sessionmaker[AsyncSession],
    cid: str,
    *,
    channel: Channel,
    department: str = "reference",
    minutes_ago: int = 0,
    overnight: bool = False,
    crisis: bool = False,
    bulk: bool = False,
    contact: str | None = None,
) -> None:
    """Given a conversation that arrived and was routed (`bulk`: an email sent to many;
    `contact`: the patron's, "" for none, else the channel's usual test patron)."""
    at = T0 - timedelta(minutes=minutes_ago)
    message = patron_writes(cid, channel=channel, at=at, contact=contact)
    message = message.model_copy(update={"bulk": bulk})
    async with sessions() as session:
        await apply(session, event_id=f"i-{cid}", assigning=Assigning(), data=message)
        await apply(
            session,
            event_id=f"r-{cid}",
            assigning=Assigning(),
            data=RoutingDecided(
                decision_id=f"r-{cid}",
                interaction_id=f"i-{cid}",
                conversation_id=cid,
                channel=channel,
                department=department,
                overnight=overnight,
                policy_version="t",
                action=Action.ESCALATE_CRISIS if crisis else Action.ANSWER,
                priority=Priority.URGENT if crisis else Priority.NORMAL,
                decided_at=at,
            ),
        )
        await session.commit()


_event_ids = itertools.count(1)


async def given(sessions: async_sessionmaker[AsyncSession], *events: BaseModel) -> None:
    """Each event applied as the consumer does, one poll batch each, each with its own id."""
    for data in events:
        await batch(sessions, [(f"ev-{next(_event_ids)}", data)])


async def batch(
    sessions: async_sessionmaker[AsyncSession], items: list[tuple[str, BaseModel]]
) -> list[bool]:
    """One poll batch of (event id, event), as the consumer applies it."""
    async with sessions() as session:
        done = await apply_batch(session, items, assigning=Assigning())
        await session.commit()
    return done
