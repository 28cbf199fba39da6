"""Heartbeat lapses and crisis re-escalation, with a hand-moved clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, Clock

from services.notifier.outgoing import build
from services.notifier.settings import NotifierSettings
from services.status.models import Conversation, Presence, Staff, StatusChange
from services.status.periodic import tick
from services.status.presence import heartbeat, set_status
from services.status.resources import Resources
from services.status.sweep import due_reescalations, lapsed_status, sweep_heartbeats
from shared.events import NotificationKind, NotificationRequested, StaffStatus

ON, AWAY, OFF = StaffStatus.ONLINE, StaffStatus.AWAY, StaffStatus.OFFLINE
CARE = "https://care.example.edu/report"


def _crisis(conversation_id: str, **columns: object) -> Conversation:
    """An open crisis flagged at T0 (channel, department, assignee... as given)."""
    values: dict[str, object] = {
        "channel": "chat",
        "opened_at": T0,
        "last_message_at": T0,
        "crisis": True,
        "crisis_at": T0,
        "state": "open",
        "priority": "urgent",
        "overnight": False,
    }
    return Conversation(conversation_id=conversation_id, **(values | columns))


@pytest.mark.parametrize(
    ("status", "silent_s", "expected"),
    [
        (ON, 10, None),
        (ON, 299, None),
        (ON, 300, AWAY),
        (ON, 1799, AWAY),
        (ON, 1800, OFF),
        (AWAY, 10, None),
        (AWAY, 1799, None),
        (AWAY, 1800, OFF),
        (OFF, 99999, None),
    ],
)
def test_lapsed_status(status: StaffStatus, silent_s: int, expected: StaffStatus | None) -> None:
    got = lapsed_status(
        status=status,
        last_heartbeat_at=T0 - timedelta(seconds=silent_s),
        since=T0 - timedelta(days=1),
        now=T0,
        away_after_s=300,
        offline_after_s=1800,
    )
    assert got == expected


def test_no_heartbeat_yet_counts_from_the_status_change() -> None:
    got = lapsed_status(
        status=ON,
        last_heartbeat_at=None,
        since=T0 - timedelta(seconds=400),
        now=T0,
        away_after_s=300,
        offline_after_s=1800,
    )
    assert got == AWAY


async def _online(session: AsyncSession, staff_id: str) -> None:
    await set_status(
        session=session, staff_id=staff_id, status=ON, actor_id=staff_id, now=T0, shift="start"
    )


async def test_sweep_moves_silent_staff_to_away_then_offline_and_records_it(
    session: AsyncSession,
) -> None:
    await _online(session, "mgarcia")
    await _online(session, "jnguyen")
    later = T0 + timedelta(seconds=301)
    await heartbeat(session=session, staff_id="jnguyen", now=later - timedelta(seconds=5))
    events = await sweep_heartbeats(
        session=session, now=later, away_after_s=300, offline_after_s=1800
    )
    assert [(e.staff_id, e.status, e.changed_by) for e in events] == [
        ("mgarcia", AWAY, "system:heartbeat")
    ]
    much_later = T0 + timedelta(seconds=4000)
    events = await sweep_heartbeats(
        session=session, now=much_later, away_after_s=300, offline_after_s=1800
    )
    assert {(e.staff_id, e.status) for e in events} == {("mgarcia", OFF), ("jnguyen", OFF)}
    history = (
        await session.execute(
            StatusChange.__table__.select()
            .where(StatusChange.staff_id == "mgarcia")
            .order_by(StatusChange.id)
        )
    ).all()
    assert [(h.from_status, h.to_status, h.changed_by) for h in history] == [
        (None, "Online", "mgarcia"),
        ("Online", "Away", "system:heartbeat"),
        ("Away", "Offline", "system:heartbeat"),
    ]


async def test_heartbeat_undoes_an_away_set_by_the_sweep_but_not_a_chosen_one(
    session: AsyncSession,
) -> None:
    await _online(session, "mgarcia")
    await _online(session, "jnguyen")
    await set_status(session=session, staff_id="jnguyen", status=AWAY, actor_id="jnguyen", now=T0)
    later = T0 + timedelta(seconds=400)
    await sweep_heartbeats(session=session, now=later, away_after_s=300, offline_after_s=1800)
    back = await heartbeat(session=session, staff_id="mgarcia", now=later)
    assert back is not None and back.status == ON
    assert await heartbeat(session=session, staff_id="jnguyen", now=later) is None
    presence = await session.get(Presence, "jnguyen")
    assert presence is not None and presence.status == "Away"


async def every_supervisors_email(session: AsyncSession) -> list[str]:
    """The addresses of every active supervisor and admin of the roster, sorted."""
    rows = await session.execute(select(Staff).where(Staff.active.is_(True), Staff.role != "staff"))
    return sorted(s.email for s in rows.scalars())


async def test_an_unacknowledged_crisis_is_reescalated_until_someone_acknowledges_it(
    session: AsyncSession,
) -> None:
    """Each round goes to the supervisors Online, further apart each time (5, 10, 15 ... 30
    minutes), until someone acknowledges the crisis. It had been re-escalated once: a crisis
    nobody acknowledged for 26 minutes, a second message in it included, reached the
    supervisors at five minutes and never again (an outside patron-safety review)."""
    conv = _crisis("c-crisis", department="care-team")
    session.add(conv)
    await session.flush()
    await _online(session, "lokafor")
    await _online(session, "mgarcia")

    async def round_at(seconds: int) -> list[NotificationRequested]:
        now = T0 + timedelta(seconds=seconds)
        convs, alerts = await due_reescalations(
            session=session, now=now, ack_timeout_s=300, care_report_url=CARE
        )
        for due in convs:  # as the sweep stamps them once published
            due.reescalated_at, due.reescalations = now, due.reescalations + 1
        await session.flush()
        return alerts

    assert await round_at(200) == []  # not yet due
    first = await round_at(301)
    assert [a.recipient for a in first] == ["linda.okafor@example.edu"]
    assert first[0].kind == NotificationKind.CRISIS_REESCALATION
    assert first[0].context["attempt"] == 1
    assert await round_at(500) == []
    second = await round_at(601)  # 5 minutes after the first
    assert [a.context["attempt"] for a in second] == [2]
    assert second[0].idempotency_key != first[0].idempotency_key
    assert await round_at(1000) == []
    third = await round_at(1201)  # 10 minutes after the second
    assert [a.context["attempt"] for a in third] == [3]
    conv.acknowledged_at, conv.acknowledged_by = T0 + timedelta(seconds=1300), "lokafor"
    await session.flush()
    assert await round_at(5000) == []


async def test_a_supervisor_away_is_not_on_shift_for_a_reescalation(session: AsyncSession) -> None:
    """Away is "not currently available" in the desk's procedures: with the only supervisor on
    shift Away, every active supervisor is alerted (it had gone to the Away one alone)."""
    session.add(_crisis("c-away", department="care-team"))
    await session.flush()
    await _online(session, "lokafor")
    await set_status(session=session, staff_id="lokafor", status=AWAY, actor_id="lokafor", now=T0)
    _, alerts = await due_reescalations(
        session=session, now=T0 + timedelta(seconds=301), ack_timeout_s=300, care_report_url=CARE
    )
    expected = await every_supervisors_email(session)
    assert len(expected) > 1 and sorted(a.recipient for a in alerts) == expected


async def test_with_nobody_on_shift_every_active_supervisor_is_alerted(
    session: AsyncSession,
) -> None:
    """At night nobody is signed in: the alert had waited for the first supervisor to sign in
    the next morning (a burst of hours-old URGENT emails), the CARE Team's email the only alert
    all night."""
    session.add(_crisis("c-night", department="care-team"))
    await session.flush()
    convs, alerts = await due_reescalations(
        session=session, now=T0 + timedelta(seconds=301), ack_timeout_s=300, care_report_url=CARE
    )
    expected = await every_supervisors_email(session)
    assert expected and sorted(a.recipient for a in alerts) == expected
    assert [c.conversation_id for c in convs] == ["c-night"]


async def test_acknowledged_crisis_is_not_reescalated(session: AsyncSession) -> None:
    await _online(session, "lokafor")
    session.add(_crisis("c-ack", channel="sms", acknowledged_at=T0, acknowledged_by="mgarcia"))
    await session.flush()
    _, alerts = await due_reescalations(
        session=session, now=T0 + timedelta(hours=1), ack_timeout_s=300, care_report_url=CARE
    )
    assert alerts == []


async def test_a_reescalation_is_an_email_the_notifier_can_build(session: AsyncSession) -> None:
    """The alert's context is what the notifier's model asks for: a supervisor reads when the
    CARE Team was alerted, for how long nobody answered and which librarian has the patron."""
    await _online(session, "lokafor")
    session.add(
        _crisis(
            "c-care",
            channel="sms",
            department="care-team",
            assignee="mgarcia",
            crisis_kinds="suicide_self_harm,violence",
        )
    )
    await session.flush()
    _, alerts = await due_reescalations(
        session=session, now=T0 + timedelta(seconds=430), ack_timeout_s=300, care_report_url=CARE
    )
    settings = NotifierSettings(console_url="https://desk.example.edu")
    email = build(alerts[0], settings)
    assert email.subject.startswith("URGENT: crisis alert not acknowledged after 7 min")
    assert "has not been acknowledged after 7 minutes" in email.text
    assert "Channel:      SMS (text message)" in email.text
    assert "With patron:  Maria Garcia" in email.text
    assert "Language:     English" in email.text
    # what the router saw, as the CARE Team's first alert said it (it had been left out)
    assert "Detected as:  suicide or self-harm; violence" in email.text
    assert "If no CARE Team incident report has been filed yet, file one" in email.text
    assert "https://desk.example.edu/dashboard/c/c-care" in email.text
    assert CARE in email.text


async def test_a_reescalation_says_who_filed_the_care_report(session: AsyncSession) -> None:
    """Recorded at the desk, the report is in the reminder: "file one" had gone on asking
    after a librarian had filed it (an outside review)."""
    await _online(session, "lokafor")
    filed = T0 + timedelta(seconds=100)
    session.add(_crisis("c-filed", care_report_at=filed, care_report_by="mgarcia"))
    await session.flush()
    _, alerts = await due_reescalations(
        session=session, now=T0 + timedelta(seconds=60), ack_timeout_s=30, care_report_url=CARE
    )
    email = build(alerts[0], NotifierSettings(console_url="https://desk.example.edu"))
    assert "CARE report:  filed by Maria Garcia at " in email.text
    assert "The CARE Team incident report is filed" in email.text
    assert "file one" not in email.text
    assert "acknowledged after 1 minute." in email.text  # one minute, not "1 minutes"


async def test_presence_history_is_kept_a_year(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """`status_history` took a row at every presence change, heartbeat lapses included, and
    nothing ever removed one (an outside review of a year's running)."""
    async with sessions() as session:
        for days in (400, 366, 200, 0):
            session.add(
                StatusChange(
                    staff_id="mgarcia",
                    from_status="Online",
                    to_status="Away",
                    changed_by="system:heartbeat",
                    changed_at=clock() - timedelta(days=days),
                )
            )
        await session.commit()
    await tick(resources)
    async with sessions() as session:
        kept = (await session.scalars(select(StatusChange.changed_at))).all()
    ages = sorted(round((clock() - at).total_seconds() / 86400) for at in kept)
    assert ages == [0, 200]
