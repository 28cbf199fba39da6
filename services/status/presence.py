"""Shift and presence: status changes, heartbeats, availability and Who's Online.

Functions change the session only; the caller commits, then publishes what they return,
so a PresenceChanged is never published for a change that was not stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.errors import Conflict, NotFound
from services.status.models import Presence, Staff, StatusChange
from shared.events import PresenceChanged, StaffStatus

HEARTBEAT_LAPSE = "system:heartbeat"
Shift = Literal["start", "end"] | None


def presence_event(staff: Staff, presence: Presence) -> PresenceChanged:
    """The wire form of a staff member's current presence (no names or contact details)."""
    return PresenceChanged(
        staff_id=staff.id,
        status=StaffStatus(presence.status),
        departments=list(staff.departments),
        campus=staff.campus,
        changed_at=presence.since,
        changed_by=presence.changed_by,
    )


async def set_status(
    *,
    session: AsyncSession,
    staff_id: str,
    status: StaffStatus,
    actor_id: str,
    now: datetime,
    note: str | None = None,
    shift: Shift = None,
) -> PresenceChanged | None:
    """Change a staff member's status and record it; the event to publish, None if unchanged."""
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("no such staff member")
    if not staff.active and status != StaffStatus.OFFLINE:
        raise Conflict("staff member is deactivated")
    presence = await session.get(Presence, staff_id)
    if presence is None:
        presence = Presence(
            staff_id=staff_id, status=StaffStatus.OFFLINE.value, since=now, changed_by=actor_id
        )
        session.add(presence)
        previous: str | None = None
    else:
        previous = presence.status
    if shift == "start":
        presence.shift_started_at = now
    elif shift == "end":
        presence.shift_started_at = None
    if status != StaffStatus.OFFLINE and actor_id == staff_id:
        presence.last_heartbeat_at = now
    if previous == status.value:
        await session.flush()
        return None
    presence.status, presence.since, presence.changed_by = status.value, now, actor_id
    session.add(
        StatusChange(
            staff_id=staff_id,
            from_status=previous,
            to_status=status.value,
            changed_by=actor_id,
            changed_at=now,
            note=note,
        )
    )
    await session.flush()
    return presence_event(staff, presence)


ROUTED_FIELDS = frozenset({"departments", "campus"})
"""What the router reads of a staff member besides their status (`presence_event`)."""


async def after_staff_change(
    *, session: AsyncSession, staff: Staff, changed: Collection[str]
) -> PresenceChanged | None:
    """After an admin changed what the router reads of a staff member (departments, campus):
    their presence again, with the new values, to publish after the commit (None: nothing the
    router reads changed, or they are Offline). Published only at status changes, a move to
    another department had gone unseen by the router until the next one, hours on a shift
    with the console open: a chat patron was told the Writing Center "will join" when nobody
    there was Online, and the Online librarian's new department got tickets (an outside
    review). Its time is the status's own: nothing else changed."""
    if not ROUTED_FIELDS & set(changed):
        return None
    presence = await session.get(Presence, staff.id)
    if presence is None or presence.status == StaffStatus.OFFLINE.value:
        return None
    return presence_event(staff, presence)


async def heartbeat(
    *, session: AsyncSession, staff_id: str, now: datetime
) -> PresenceChanged | None:
    """Record that the staff member's dashboard is alive; undoes an Away the sweep set."""
    presence = await session.get(Presence, staff_id)
    if presence is None or presence.status == StaffStatus.OFFLINE.value:
        return None
    presence.last_heartbeat_at = now
    if presence.status == StaffStatus.AWAY.value and presence.changed_by == HEARTBEAT_LAPSE:
        return await set_status(
            session=session,
            staff_id=staff_id,
            status=StaffStatus.ONLINE,
            actor_id=staff_id,
            now=now,
            note="heartbeat resumed",
        )
    await session.flush()
    return None


async def current(*, session: AsyncSession) -> list[tuple[Staff, Presence]]:
    """Every staff member with a presence row."""
    rows = await session.execute(
        select(Staff, Presence).join(Presence, Presence.staff_id == Staff.id).order_by(Staff.id)
    )
    return [(s, p) for s, p in rows]


async def all_presence_events(*, session: AsyncSession) -> list[PresenceChanged]:
    """Current presence of everyone, for republishing on startup (compacted topic)."""
    return [presence_event(s, p) for s, p in await current(session=session)]


async def online_counts(*, session: AsyncSession) -> Counter[str]:
    """How many active staff are Online per department."""
    counts: Counter[str] = Counter()
    for staff, presence in await current(session=session):
        if staff.active and presence.status == StaffStatus.ONLINE.value:
            counts.update(staff.departments)
    return counts


def availability_view(counts: Counter[str], department: str) -> dict[str, Any]:
    """Whether a department's chat is staffed, without saying by whom."""
    return {
        "department": department,
        "staffed": counts[department] > 0,
        "online": counts[department],
    }


async def whos_online(*, session: AsyncSession) -> dict[str, list[dict[str, Any]]]:
    """Staff who are not Offline, per department (for staff and supervisors only)."""
    board: dict[str, list[dict[str, Any]]] = {}
    for staff, presence in await current(session=session):
        if not staff.active or presence.status == StaffStatus.OFFLINE.value:
            continue
        entry = {
            "id": staff.id,
            "name": staff.name,
            "status": presence.status,
            "since": presence.since.isoformat(),
            "campus": staff.campus,
        }
        for department in staff.departments:
            board.setdefault(department, []).append(entry)
    return board


_STATUS_OF = select(Presence.status, Presence.since, Presence.shift_started_at).where(
    Presence.staff_id == bindparam("staff_id")
)


async def status_of(*, session: AsyncSession, staff_id: str) -> dict[str, Any]:
    """One staff member's own status (every open console asks every 30 s)."""
    presence = (await session.execute(_STATUS_OF, {"staff_id": staff_id})).one_or_none()
    if presence is None:
        return {"staff_id": staff_id, "status": StaffStatus.OFFLINE.value, "since": None}
    return {
        "staff_id": staff_id,
        "status": presence.status,
        "since": presence.since.isoformat(),
        "shift_started_at": presence.shift_started_at.isoformat()
        if presence.shift_started_at
        else None,
    }
