"""Conversations given back to the queue by whoever held them: at a sign-off (their own, a
supervisor's, a lapsed heartbeat's) those whose patron waits (`give_back_waiting`), at a
deactivation all of them (`give_back_all`), and by a sweep any a claim racing the
deactivation still gave the leaver."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor
from services.status.conversations import actions
from services.status.models import Conversation, Staff
from services.status.resources import Resources, deliver, keyed

SYSTEM = Actor(id="refdesk", role="admin")
"""Who gives back what the sweep finds (the transcript says "by refdesk")."""
LEAVERS_CHECKED = "leavers_checked"
CHECK_EVERY = timedelta(minutes=1)


async def give_back_waiting(
    res: Resources, session: AsyncSession, actor: Actor, staff_id: str | None = None
) -> None:
    """After a sign-off's commit: release the conversations whose patron waits for the one who
    signed off (`staff_id`, else the actor), as the actor (`actions.release_waiting`), and
    publish the releases."""
    released = await actions.release_waiting(
        session=session, actor=actor, now=res.clock(), staff_id=staff_id
    )
    await _publish(res, session, released)


async def give_back_all(res: Resources, session: AsyncSession, actor: Actor, staff_id: str) -> None:
    """After a deactivation's commit: release every open conversation the leaver had
    (`actions.release_all_held`), as the admin who deactivated them, and publish the releases."""
    released = await actions.release_all_held(
        session=session, staff_id=staff_id, actor=actor, now=res.clock()
    )
    await _publish(res, session, released)


async def _publish(res: Resources, session: AsyncSession, released: list[actions.Outcome]) -> None:
    """The releases' events, through the outbox (`resources.deliver`)."""
    records = [r for o in released for r in keyed(o.events, o.conv.conversation_id)]
    await deliver(res, session, records)


async def sweep_leavers(res: Resources, now: datetime) -> None:
    """Once a minute: conversations an inactive staff member still holds go back to the queue
    (a claim that had read them active as the deactivation committed kept one with them)."""
    last = res.extra.get(LEAVERS_CHECKED)
    if isinstance(last, datetime) and now - last < CHECK_EVERY:
        return
    async with res.sessions() as session:
        holding = exists().where(Conversation.assignee == Staff.id, Conversation.state == "open")
        leavers = (
            await session.scalars(select(Staff.id).where(Staff.active.is_(False), holding))
        ).all()
        for staff_id in leavers:
            await give_back_all(res, session, SYSTEM, staff_id)
    res.extra[LEAVERS_CHECKED] = now
