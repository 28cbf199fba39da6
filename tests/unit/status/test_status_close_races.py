"""A patron's message and a librarian's close at the same moment, on two status replicas
sharing PostgreSQL (an outside probe: the message landed in the closed conversation 5 times
in 13, in no queue, while the statistics counted the conversation reopened).

The consumer reads the conversation rows it changes FOR UPDATE, and a close takes the row as
it is when it holds it, so the two are one after the other whichever commits first: a close
first is reopened by the message; a message first is inside the closed conversation, closed
no earlier than the message."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0

from services.status.auth import Actor
from services.status.conversations import actions
from services.status.handlers import Assigning, apply
from services.status.models import Conversation
from shared.events import Channel, InteractionReceived, Patron

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]

MARIA = Actor(id="mgarcia", role="staff", departments=("reference",))
CID = "sms-race"


def message(n: int, at: timedelta) -> InteractionReceived:
    return InteractionReceived(
        interaction_id=f"in-race-{n}",
        conversation_id=CID,
        channel=Channel.SMS,
        provider="test",
        provider_message_id=f"SM{n}",
        patron=Patron(contact="+18175550192"),
        text="wait, one more question" if n else "is the library open sunday",
        received_at=T0 + at,
    )


async def given_an_open_conversation(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await apply(session, event_id="e0", data=message(0, timedelta(0)), assigning=Assigning())
        await session.commit()


async def state(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, bool]:
    async with sessions() as session:
        conv = await session.get(Conversation, CID)
        assert conv is not None and conv.last_message_at is not None
        closed_before_message = conv.closed_at is not None and conv.closed_at < conv.last_message_at
        return conv.state, closed_before_message


async def test_a_message_applied_while_a_close_holds_the_row_reopens_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given_an_open_conversation(sessions)
    async with sessions() as closing:
        await actions.close(
            session=closing, conversation_id=CID, actor=MARIA, now=T0 + timedelta(seconds=60)
        )  # holds the row, not committed yet

        async def consumer() -> None:
            async with sessions() as session:
                late = message(1, timedelta(seconds=60, milliseconds=1))
                await apply(session, event_id="e1", data=late, assigning=Assigning())
                await session.commit()

        applying = asyncio.create_task(consumer())
        await asyncio.sleep(0.3)  # the consumer reads the row meanwhile
        await closing.commit()
        await asyncio.wait_for(applying, timeout=10)
    assert await state(sessions) == ("open", False)


async def test_a_close_while_a_message_is_being_applied_closes_after_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given_an_open_conversation(sessions)
    async with sessions() as consuming:
        late = message(1, timedelta(seconds=60, milliseconds=1))
        await apply(consuming, event_id="e1", data=late, assigning=Assigning())

        async def librarian() -> None:
            async with sessions() as session:
                await actions.close(
                    session=session,
                    conversation_id=CID,
                    actor=MARIA,
                    now=T0 + timedelta(seconds=60),
                )
                await session.commit()

        closing = asyncio.create_task(librarian())
        await asyncio.sleep(0.3)
        await consuming.commit()
        await asyncio.wait_for(closing, timeout=10)
    assert await state(sessions) == ("closed", False)  # closed, never before the message
