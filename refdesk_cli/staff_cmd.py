"""`refdesk staff`: the status service's roster and bearer tokens, from the operator's shell.

Works on the status database itself (REFDESK_DATABASE_URL, or run/status.db), through the
status service's own functions (services/status/staff.py), so the first admin can be created
and given a token before anyone can call the admin API. Only a token's hash is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status import staff as staff_service
from services.status.conversations.macros import MacroBook
from services.status.staff import StaffIn, staff_view, token_view
from shared.clock import utcnow
from shared.db import create_engine, session_factory
from shared.events import PresenceChanged
from shared.kafka import build_broker, publish
from shared.settings import CommonSettings
from shared.topics import PRESENCE

SERVICE = "status"
OPERATOR = "refdesk-cli"
"""Who the access log says made a change from the operator's shell."""
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]


class DatabaseUnusable(Exception):
    """The status database could not be read or written (not migrated, unreachable)."""


def on_status_database(work: Callable[[Sessions], Awaitable[T]]) -> T:
    """Run `work` against the status database the settings name (REFDESK_DATABASE_URL)."""

    async def run() -> T:
        engine = create_engine(CommonSettings().db_url(SERVICE))
        try:
            return await work(session_factory(engine))
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise DatabaseUnusable(
                f"the status database cannot be used ({reason}); is it migrated? "
                "(`python -m shared.migrate`, or start the status service once)"
            ) from None
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def add(sessions: Sessions, data: StaffIn) -> dict[str, Any]:
    """Add a staff member (departments checked against the desk's, as the admin API does)."""
    staff_service.check_departments(data.departments, known=MacroBook().departments())
    async with sessions() as session:
        now = utcnow()
        row = await staff_service.create_staff(session=session, data=data, now=now)
        await staff_service.log_admin_action(
            session, actor_id=OPERATOR, action="staff-add", staff_id=data.id, at=now
        )
        await session.commit()
        return staff_view(row)


async def roster(sessions: Sessions) -> list[dict[str, Any]]:
    """Every staff record, by id."""
    async with sessions() as session:
        return [staff_view(row) for row in await staff_service.list_staff(session=session)]


async def issue(sessions: Sessions, staff_id: str, label: str) -> tuple[int, str]:
    """A new bearer token of an active staff member: (its id, the token)."""
    async with sessions() as session:
        now = utcnow()
        issued = await staff_service.issue_token(
            session=session, staff_id=staff_id, now=now, label=label
        )
        await staff_service.log_admin_action(
            session,
            actor_id=OPERATOR,
            action="token-issue",
            staff_id=staff_id,
            at=now,
            token_id=issued[0],
        )
        await session.commit()
        return issued


async def tokens(sessions: Sessions, staff_id: str) -> list[dict[str, Any]]:
    """A staff member's bearer tokens, without their secret."""
    async with sessions() as session:
        rows = await staff_service.list_tokens(session=session, staff_id=staff_id)
        return [token_view(row) for row in rows]


async def revoke(sessions: Sessions, staff_id: str, token_id: int) -> dict[str, Any]:
    """Revoke one of a staff member's tokens."""
    async with sessions() as session:
        now = utcnow()
        row, event = await staff_service.revoke_token(
            session=session, staff_id=staff_id, token_id=token_id, now=now, actor_id=OPERATOR
        )
        await staff_service.log_admin_action(
            session,
            actor_id=OPERATOR,
            action="token-revoke",
            staff_id=staff_id,
            at=now,
            token_id=token_id,
        )
        await session.commit()
        view = token_view(row)
    if event is not None:  # no token left: Offline, told to routing as the console tells it
        view["signed_off"] = await _publish_presence(event)
    return view


async def _publish_presence(event: PresenceChanged) -> bool:
    """Publish a presence change on refdesk.presence (acks=all); False if the broker could
    not be reached in time (the status service republishes everyone's presence at start)."""
    settings = CommonSettings()
    broker = build_broker(settings, client_id="refdesk-cli")
    try:
        async with asyncio.timeout(15):
            await broker.start()
            await publish(broker, PRESENCE.name, event, key=event.staff_id, source=OPERATOR)
        return True
    except Exception:  # the database change stands; the caller says what is left to do
        return False
    finally:
        await broker.stop()
