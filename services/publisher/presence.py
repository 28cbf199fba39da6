"""The per-department tally of Online staff, kept from presence events.

Staff ids stay in this table; only department counts leave it. A presence event yields one
public event per department whose count it changed, so a redelivery of an event already
committed yields none, and one not yet committed yields the same events again (same ids).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.publisher.projection import Outgoing, public_event, slug
from services.publisher.tables import PresenceTally
from shared.events import AnyEvent, PresenceChanged, PublicDepartmentPresence, StaffStatus


async def online_counts(session: AsyncSession) -> Counter[str]:
    """Online staff per department."""
    rows = (await session.execute(select(PresenceTally).where(PresenceTally.online))).scalars()
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(set(row.departments))
    return counts


async def apply_presence(session: AsyncSession, data: PresenceChanged) -> dict[str, int]:
    """Record one staff member's presence; the departments whose Online count changed."""
    departments = sorted({d for d in (slug(x) for x in data.departments) if d})
    before = await online_counts(session)
    row = await session.get(PresenceTally, data.staff_id)
    if row is None:
        row = PresenceTally(staff_id=data.staff_id)
        session.add(row)
    elif row.changed_at > data.changed_at:
        return {}  # an older change arrived late; the tally already reflects a newer one
    affected = set(row.departments or []) | set(departments)
    row.online = data.status is StaffStatus.ONLINE
    row.departments = departments
    row.changed_at = data.changed_at
    await session.flush()
    after = await online_counts(session)
    return {d: after[d] for d in sorted(affected) if after[d] != before[d]}


def presence_events(
    event: AnyEvent, data: PresenceChanged, changes: dict[str, int]
) -> list[Outgoing]:
    """One public department-presence event per changed department, keyed by department."""
    return [
        Outgoing(
            public_event(
                event,
                PublicDepartmentPresence(
                    department=department,
                    online=count,
                    changed_at=data.changed_at,
                ),
                part=f"presence/{department}",
            ),
            department,
        )
        for department, count in changes.items()
    ]
