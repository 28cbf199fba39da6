"""The per-department Online tally: given these presence changes, then these public counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.publisher.presence import apply_presence, presence_events
from shared.db import create_engine, migrate, session_factory
from shared.events import AnyEvent, PresenceChanged, StaffStatus, new_event

T = datetime(2025, 12, 1, 14, tzinfo=UTC)
ON, AWAY, OFF = StaffStatus.ONLINE, StaffStatus.AWAY, StaffStatus.OFFLINE


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(database_url)
    await migrate(engine, "publisher")
    async with session_factory(engine)() as s:
        yield s
    await engine.dispose()


def change(staff: str, status: StaffStatus, departments: list[str], minute: int) -> PresenceChanged:
    return PresenceChanged(
        staff_id=staff,
        status=status,
        departments=departments,
        changed_at=T + timedelta(minutes=minute),
    )


async def test_counts_follow_presence_changes(session: AsyncSession) -> None:
    steps = [
        (
            change("ana", ON, ["reference", "nw-circulation"], 0),
            {"nw-circulation": 1, "reference": 1},
        ),
        (change("bo", ON, ["reference"], 1), {"reference": 2}),
        (
            change("ana", AWAY, ["reference", "nw-circulation"], 2),
            {"nw-circulation": 0, "reference": 1},
        ),
        (change("ana", ON, ["tutoring"], 3), {"tutoring": 1}),  # back, for another desk
        (change("bo", OFF, ["reference"], 4), {"reference": 0}),
        (change("bo", OFF, ["reference"], 4), {}),  # a redelivery changes nothing
        (change("ana", OFF, ["tutoring"], 1), {}),  # older than what we have: ignored
        (change("cy", AWAY, ["reference"], 5), {}),  # not Online: no count changes
    ]
    for data, expected in steps:
        assert await apply_presence(session, data) == expected, data
        await session.commit()


async def test_presence_events_name_departments_not_staff(session: AsyncSession) -> None:
    data = change("staff-secret-9", ON, ["reference"], 0)
    event = AnyEvent.model_validate_json(new_event(data, source="unit").model_dump_json())
    [out] = presence_events(event, data, await apply_presence(session, data))
    assert out.key == "reference"
    assert "staff-secret-9" not in out.event.model_dump_json()
    assert out.event.type == "edu.tccd.refdesk.public.department.presence.v1"
