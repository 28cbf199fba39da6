"""The per-department Online tally: given these presence changes, then these public counts.

Changes to one department can arrive in another order than they happened (the topic is keyed
by staff id): each count carries the time it holds from, which only moves forward, and each
event id is derived from the count it carries, so one id never says two things.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.publisher.presence import CountChange, apply_presence, presence_events
from shared.db import create_engine, migrate, session_factory
from shared.events import PresenceChanged, StaffStatus

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
        changes = await apply_presence(session, data)
        assert {c.department: c.online for c in changes} == expected, data
        assert all(c.changed_at == data.changed_at for c in changes)
        await session.commit()


async def test_presence_events_name_departments_not_staff(session: AsyncSession) -> None:
    data = change("staff-secret-9", ON, ["reference"], 0)
    [out] = presence_events(await apply_presence(session, data))
    assert out.key == "reference"
    assert "staff-secret-9" not in out.event.model_dump_json()
    assert out.event.type == "edu.tccd.refdesk.public.department.presence.v1"
    assert out.event.time == data.changed_at == out.event.data.changed_at


async def test_a_change_that_arrives_late_is_counted_after_the_newest(
    session: AsyncSession,
) -> None:
    """ana goes Online at 0, bo at 1; then bo goes Offline at 3, which arrives before ana's
    Offline at 2: every count's time is later than the one before, and the last count is the
    truth, so a subscriber who keeps the count with the latest time keeps the right one."""
    published: list[CountChange] = []
    for data in (
        change("ana", ON, ["reference"], 0),
        change("bo", ON, ["reference"], 1),
        change("bo", OFF, ["reference"], 3),
        change("ana", OFF, ["reference"], 2),  # late
    ):
        published += await apply_presence(session, data)
        await session.commit()
    assert [c.online for c in published] == [1, 2, 1, 0]
    times = [c.changed_at for c in published]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[-1] == T + timedelta(minutes=3, microseconds=1)
    newest = max(published, key=lambda c: c.changed_at)
    assert newest.online == 0


async def test_an_event_id_always_carries_the_same_count(database_url: str, tmp_path: Path) -> None:
    """The same changes projected twice, by two publishers that read them in different orders
    (and by one that projects a batch again after it failed): ids that match say the same."""
    changes = [
        change("ana", ON, ["reference"], 0),
        change("bo", ON, ["reference"], 1),
        change("cy", ON, ["reference", "tutoring"], 2),
        change("bo", OFF, ["reference"], 3),
    ]
    said: dict[str, str] = {}
    for n, order in enumerate((changes, [changes[1], changes[0], changes[3], changes[2]])):
        url = database_url if n == 0 else f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
        engine = create_engine(url)
        await migrate(engine, "publisher")
        async with session_factory(engine)() as session:
            for data in order:
                for attempt in ("fails", "succeeds"):  # a batch redelivered before its commit
                    for out in presence_events(await apply_presence(session, data)):
                        content = out.event.model_dump_json()
                        assert said.setdefault(out.event.id, content) == content
                    if attempt == "fails":
                        await session.rollback()
                    else:
                        await session.commit()
        await engine.dispose()
    assert len({said[k] for k in said}) == len(said)


async def test_an_upgraded_database_counts_on_from_the_tally(database_url: str) -> None:
    """Migration 0002 fills the department counts from the tally 0001 kept, so the first
    change after an upgrade publishes only what it changes, later than what the tally held."""
    engine = create_engine(database_url)
    await migrate(engine, "publisher", revision="0001")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO presence_tally (staff_id, online, departments, changed_at) VALUES "
                "('ana', :on, :both, :t0), ('bo', :on, :ref, :t1), ('cy', :off, :ref, :t2)"
            ),
            {
                "on": True,
                "off": False,
                "both": '["reference", "tutoring"]',
                "ref": '["reference"]',
                "t0": T,
                "t1": T + timedelta(minutes=1),
                "t2": T + timedelta(minutes=2),
            },
        )
    await migrate(engine, "publisher")
    async with session_factory(engine)() as session:
        changes = await apply_presence(session, change("dee", ON, ["reference"], 1))
    await engine.dispose()
    assert changes == [
        CountChange("reference", 3, T + timedelta(minutes=2, microseconds=1)),
    ]
