"""The per-department tally of Online staff, kept from presence events.

Staff ids stay in this table; only department counts leave it. Presence changes come from a
topic keyed by staff id, so two staff members' changes can arrive in another order than they
happened. Each department's count is therefore published with `changed_at`, the time it holds
from, which only moves forward: the newest change applied to that department or, when a change
that happened earlier arrives after a newer one and alters the count, one microsecond past the
department's last time. The event's id is derived from what it says (department, count,
changed_at), so one id always carries the same content, and the newest count of a department
is the one with the latest changed_at (docs/subscribing.md).

A redelivered presence event whose effect was committed changes no count and yields nothing;
one not yet committed meets the same tally again and yields the very same events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.publisher.projection import SOURCE, Outgoing, slug
from services.publisher.tables import DepartmentPresence, PresenceTally
from shared.db import insert_ignoring_duplicates
from shared.events import (
    CloudEvent,
    PresenceChanged,
    PublicDepartmentPresence,
    StaffStatus,
    derived_id,
    new_event,
)

TICK = timedelta(microseconds=1)
DEPARTMENTS = cast(Table, DepartmentPresence.__table__)


@dataclass(frozen=True)
class CountChange:
    """A department's new Online count and the time it holds from (UTC)."""

    department: str
    online: int
    changed_at: datetime


async def online_counts(session: AsyncSession) -> Counter[str]:
    """Online staff per department."""
    rows = (await session.execute(select(PresenceTally).where(PresenceTally.online))).scalars()
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(set(row.departments))
    return counts


async def apply_presence(session: AsyncSession, data: PresenceChanged) -> list[CountChange]:
    """Record one staff member's presence; the department counts it changed."""
    departments = sorted({d for d in (slug(x) for x in data.departments) if d})
    at = data.changed_at.astimezone(UTC)
    # FOR UPDATE (PostgreSQL): replicas sharing the database apply one department's changes
    # one at a time, so its counts and times follow each other
    row = await session.get(PresenceTally, data.staff_id, with_for_update=True)
    if row is not None and row.changed_at > at:
        return []  # an older change arrived late; the tally already reflects a newer one
    affected = sorted(set(row.departments if row else ()) | set(departments))
    # A department counted for the first time gets its row first, so there is a row to lock:
    # a replica that inserts the same one meanwhile makes this wait for it, then skip it.
    new: set[str] = set()
    if affected:
        created = await session.execute(
            insert_ignoring_duplicates(session, DEPARTMENTS).returning(
                DepartmentPresence.department
            ),
            [{"department": d, "online": 0, "changed_at": at} for d in affected],
        )
        new = set(created.scalars())
    last = {
        d.department: d
        for d in (
            await session.execute(
                select(DepartmentPresence)
                .where(DepartmentPresence.department.in_(affected))
                .with_for_update()
            )
        ).scalars()
    }
    if row is None:
        row = PresenceTally(staff_id=data.staff_id)
        session.add(row)
    row.online = data.status is StaffStatus.ONLINE
    row.departments = departments
    row.changed_at = at
    await session.flush()
    counts = await online_counts(session)
    changes: list[CountChange] = []
    for department in affected:
        known = last[department]
        if department in new:
            if counts[department]:
                changes.append(CountChange(department, counts[department], at))
        elif counts[department] != known.online:
            moved = at if at > known.changed_at else known.changed_at + TICK
            changes.append(CountChange(department, counts[department], moved))
            known.changed_at = moved
        elif at > known.changed_at:
            known.changed_at = at  # the count still holds, as of this change
        known.online = counts[department]
    return changes


def presence_event(change: CountChange) -> CloudEvent[Any]:
    """The public department-presence event of a count: its id derived from its content, its
    time the time the count holds from."""
    data = PublicDepartmentPresence(
        department=change.department, online=change.online, changed_at=change.changed_at
    )
    stamp = change.changed_at.astimezone(UTC).isoformat()
    event_id = derived_id("presence", change.department, str(change.online), stamp)
    event = new_event(data, source=SOURCE, event_id=event_id)
    return event.model_copy(update={"time": change.changed_at})


def presence_events(changes: Sequence[CountChange]) -> list[Outgoing]:
    """One public department-presence event per changed count, keyed by department."""
    return [Outgoing(presence_event(change), change.department) for change in changes]
