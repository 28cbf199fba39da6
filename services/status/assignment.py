"""Auto-assignment: new conversations go to the least busy Online staff of the department."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status import rows
from services.status.models import Conversation, ConversationRow, Presence, Staff
from shared.events import StaffStatus


def pick_assignee(loads: dict[str, int], *, capacity: int) -> str | None:
    """The least busy candidate below capacity (ties: by id); None if everyone is full."""
    open_slots = [(load, staff_id) for staff_id, load in loads.items() if load < capacity]
    return min(open_slots)[1] if open_slots else None


async def online_in(*, session: AsyncSession, department: str) -> list[str]:
    """Ids of active staff of a department who are Online."""
    rows = await session.execute(
        select(Staff)
        .join(Presence, Presence.staff_id == Staff.id)
        .where(Staff.active.is_(True), Presence.status == StaffStatus.ONLINE.value)
    )
    return [s.id for s in rows.scalars() if department in s.departments]


async def loads_of(*, session: AsyncSession, staff_ids: list[str]) -> dict[str, int]:
    """Open conversations each staff member holds."""
    loads = dict.fromkeys(staff_ids, 0)
    if staff_ids:
        rows = await session.execute(
            select(Conversation.assignee, func.count())
            .where(Conversation.state == "open", Conversation.assignee.in_(staff_ids))
            .group_by(Conversation.assignee)
        )
        for staff_id, count in rows:
            loads[str(staff_id)] = int(count)
    return loads


async def auto_assign(*, session: AsyncSession, conv: ConversationRow, capacity: int) -> str | None:
    """Assign an open, unassigned, routed conversation if someone has room (the unit's
    earlier assignments are written first, so they count)."""
    if conv.state != "open" or conv.assignee is not None or conv.department is None:
        return None
    await session.run_sync(rows.write)
    candidates = await online_in(session=session, department=conv.department)
    chosen = pick_assignee(await loads_of(session=session, staff_ids=candidates), capacity=capacity)
    conv.assignee = chosen
    return chosen


async def is_offline(*, session: AsyncSession, staff_id: str) -> bool:
    """Whether a staff member is Offline (or never signed in)."""
    presence = await session.get(Presence, staff_id)
    return presence is None or presence.status == StaffStatus.OFFLINE.value
