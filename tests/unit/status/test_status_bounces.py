"""What a mail system reported about an email the desk sent (a bounce), on that email's
transcript line: a bounce after the notifier's announcement or before it, a delay and a failure
in either order, redelivered and replayed events, a bounce nobody's line matches, retention,
and the JSON transcript (SQLite; PostgreSQL too)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import httpx
import pytest
from automatic_mail import (
    CID,
    KEY,
    MID,
    announced,
    bounce,
    delivery,
    feed,
    patron_email,
    requested,
    routed,
)
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, batch, bearer, given

from services.status.conversations import bounces, retention
from services.status.models import Conversation, EmailBounce, TranscriptEntry
from shared.events import DeliveryState, NotificationKind

NOT_THERE = ("undelivered", "the address does not exist")


async def kept(sessions: async_sessionmaker[AsyncSession], cid: str = CID, mid: str = MID) -> Any:
    """The report status keeps on an email: (action, status), or None."""
    async with sessions() as session:
        row = await session.get(EmailBounce, bounces.key(cid, mid))
    return None if row is None else (row.action, row.status)


async def waiting(sessions: async_sessionmaker[AsyncSession], cid: str = CID) -> bool:
    """Whether a bounce in the conversation came before the email it reports on."""
    async with sessions() as session:
        conv = await session.get(Conversation, cid)
    return conv is not None and conv.bounce_waiting


@pytest.fixture
async def conversation(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given the patron's email on the desk."""
    await given(sessions, patron_email(), routed())


@pytest.mark.usefixtures("conversation")
@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [
        ("failed", "5.1.1", NOT_THERE),
        ("failed", "5.2.2", ("undelivered", "the mailbox is full")),
        ("failed", "5.7.1", ("undelivered", "refused by the receiving mail system")),
        ("failed", None, ("undelivered", "the mail system gave no reason")),
        ("delayed", "4.4.1", ("delayed", "the mail system is still trying")),
    ],
)
async def test_a_bounce_after_the_announcement_marks_the_email(
    sessions: async_sessionmaker[AsyncSession],
    action: Any,
    status: str | None,
    expected: tuple[str, str],
) -> None:
    await given(sessions, requested(), announced())
    assert await delivery(sessions) == ("sent", None)
    before = len(await feed(sessions))
    await given(sessions, bounce(action, status))
    assert await delivery(sessions) == expected
    assert await kept(sessions) == (action, status)
    assert not await waiting(sessions)  # later announcements need not look for reports
    # the bounce's own line, then the email's new state: open consoles refetch the conversation
    assert (await feed(sessions))[before:] == [(CID, "delivery")]


@pytest.mark.usefixtures("conversation")
async def test_a_bounce_before_the_announcement_is_kept_and_applied_when_the_line_is_written(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given(sessions, requested(), bounce())
    assert await delivery(sessions) == ("queued", None)
    assert await kept(sessions) == ("failed", "5.1.1")
    assert await waiting(sessions)  # so the announcement looks for the report
    await given(sessions, announced())
    assert await delivery(sessions) == NOT_THERE


@pytest.mark.usefixtures("conversation")
async def test_a_bounce_before_any_line_and_the_command_last_keeps_the_mail_systems_word(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given(sessions, bounce(), announced(), requested())
    assert await delivery(sessions) == NOT_THERE


@pytest.mark.usefixtures("conversation")
@pytest.mark.parametrize("bounce_first", [True, False])
async def test_a_bounce_and_its_announcement_in_one_batch_in_either_order(
    sessions: async_sessionmaker[AsyncSession], bounce_first: bool
) -> None:
    await given(sessions, requested())
    pair: list[tuple[str, BaseModel]] = [("a", announced()), ("b", bounce("failed", "5.1.10"))]
    await batch(sessions, pair[::-1] if bounce_first else pair)
    assert await delivery(sessions) == NOT_THERE  # 5.1.10: Exchange Online's RecipientNotFound


@pytest.mark.usefixtures("conversation")
@pytest.mark.parametrize("line_first", [True, False], ids=["line-first", "line-last"])
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=str)
async def test_a_delay_never_undoes_a_failure_whatever_the_order(
    sessions: async_sessionmaker[AsyncSession], order: tuple[int, ...], line_first: bool
) -> None:
    # a delay before the failure and one dated after it (a backup server still retrying)
    reports = [
        bounce("delayed", "4.4.1", minutes=11),
        bounce("failed", "5.1.1", minutes=20),
        bounce("delayed", "4.4.7", minutes=45),
    ]
    arriving: list[BaseModel] = [reports[i] for i in order]
    arriving.insert(0 if line_first else 3, announced())
    await given(sessions, requested(), *arriving)
    assert await delivery(sessions) == NOT_THERE
    assert await kept(sessions) == ("failed", "5.1.1")


@pytest.mark.usefixtures("conversation")
async def test_a_delay_shows_until_the_failure_comes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given(sessions, requested(), announced(), bounce("delayed", "4.2.2", minutes=11))
    assert await delivery(sessions) == ("delayed", "the mail system is still trying")
    await given(sessions, bounce("delayed", None, minutes=30))  # a later delay: still delayed
    assert await delivery(sessions) == ("delayed", "the mail system is still trying")
    await given(sessions, bounce("failed", "5.2.2", minutes=50))
    assert await delivery(sessions) == ("undelivered", "the mailbox is full")


@pytest.mark.usefixtures("conversation")
async def test_redelivered_and_replayed_events_end_in_the_same_state(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events: list[tuple[str, BaseModel]] = [
        ("q", requested()),
        ("a", announced()),
        ("b1", bounce("delayed", "4.4.1", minutes=11, n=1)),
        ("b2", bounce("failed", "5.1.1", minutes=40, n=2)),
    ]
    assert await batch(sessions, events) == [True, True, True, True]
    state = await delivery(sessions), await kept(sessions)
    changes = len(await feed(sessions))
    assert await batch(sessions, events) == [False, False, False, False]  # redelivered: dropped
    assert (await delivery(sessions), await kept(sessions)) == state
    assert len(await feed(sessions)) == changes
    # the notifier announces again (a retried publish), then fails late; the bounces replayed
    await given(sessions, announced(), announced(DeliveryState.FAILED), requested())
    await given(sessions, bounce("failed", "5.1.1", minutes=40, n=2), events[2][1])
    assert (await delivery(sessions), await kept(sessions)) == state
    assert state == (NOT_THERE, ("failed", "5.1.1"))


@pytest.mark.usefixtures("conversation")
async def test_an_email_the_notifier_could_not_send_stays_failed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # an outcome that names the Message-ID it would have had: the bounce still changes nothing
    failed = announced(DeliveryState.FAILED).model_copy(update={"message_id": f"<{MID}>"})
    await given(sessions, requested(), failed, bounce())
    assert await delivery(sessions) == ("failed", "smtp 550")


@pytest.mark.usefixtures("conversation")
async def test_a_bounce_nobodys_email_matches_marks_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    other = "email-auto-other"
    await given(
        sessions,
        requested(),
        announced(),
        patron_email(other),
        routed(other),
        requested("reply-other", other),
        announced(key="reply-other", cid=other, mid="<reply-other@refdesk.tccd.edu>"),
    )
    before = await feed(sessions)
    unknown = bounce(mid="nobody-knows-this@refdesk.tccd.edu", minutes=13)
    patrons = bounce(mid=patron_email().provider_message_id.strip("<>"), minutes=14)
    elsewhere = bounce(mid="reply-other@refdesk.tccd.edu", minutes=15)  # another conversation's
    assert await batch(sessions, [("u", unknown), ("p", patrons), ("e", elsewhere)]) == [
        True,
        True,
        True,
    ]
    assert await delivery(sessions) == ("sent", None)
    assert await delivery(sessions, "reply-other") == ("sent", None)
    async with sessions() as session:
        patron_line = await session.get(TranscriptEntry, patron_email().interaction_id)
    assert patron_line is not None and patron_line.delivery_state is None
    assert await kept(sessions, mid="nobody-knows-this@refdesk.tccd.edu") == ("failed", "5.1.1")
    # the three reports are lines of the conversation, and nothing else changed
    assert (await feed(sessions))[len(before) :] == [(CID, "automatic")]


@pytest.mark.parametrize(
    ("status", "action", "words"),
    [
        ("5.1.1", "failed", "the address does not exist"),
        ("5.1.2", "failed", "the mail domain was not found"),
        ("5.1.10", "failed", "the address does not exist"),
        ("5.4.4", "failed", "the mail domain was not found"),
        ("5.2.1", "failed", "the mailbox is disabled"),
        ("5.2.2", "failed", "the mailbox is full"),
        ("5.2.3", "failed", "the message was too large"),
        ("5.3.4", "failed", "the message was too large"),
        ("5.7.1", "failed", "refused by the receiving mail system"),
        ("5.7.26", "failed", "refused by the receiving mail system"),
        ("4.4.1", "delayed", "the mail system is still trying"),
        ("4.4.7", "failed", "the mail system gave up trying"),
        ("5.4.1", "failed", "error 5.4.1"),
        (None, "failed", "the mail system gave no reason"),
        (None, "delayed", "the mail system is still trying"),
    ],
)
def test_why_an_email_was_not_delivered_in_the_desks_words(
    status: str | None, action: str, words: str
) -> None:
    assert bounces.reason(status, action) == words


async def test_bounce_reports_are_dropped_with_the_transcript_retention(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given(sessions, bounce(minutes=0), bounce(mid="newer@refdesk.tccd.edu", minutes=0))
    now = T0 + timedelta(days=30)
    async with sessions() as session:
        await session.execute(
            EmailBounce.__table__.update()
            .where(EmailBounce.message_id == "newer@refdesk.tccd.edu")
            .values(reported_at=now - timedelta(days=1))
        )
        await retention.purge_expired(session=session, now=now, retention_days=7)
        await session.commit()
    assert await kept(sessions) is None
    assert await kept(sessions, mid="newer@refdesk.tccd.edu") == ("failed", "5.1.1")


@pytest.mark.usefixtures("conversation")
async def test_the_transcript_api_gives_the_mail_systems_word(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await given(sessions, requested(), announced(), bounce("failed", "5.2.1"))
    view = (await client.get(f"/conversations/{CID}", headers=bearer("mgarcia"))).json()
    line = next(m for m in view["messages"] if m["id"] == KEY)
    assert line["delivery"] == {"state": "undelivered", "reason": "the mailbox is disabled"}
    report = view["messages"][-1]
    assert (report["direction"], report["automatic"]) == ("in", "bounce")
    assert report["delivery"] is None


@pytest.mark.parametrize(
    ("kind", "action", "expected"),
    [
        (NotificationKind.CRISIS_ALERT, "failed", NOT_THERE),
        (
            NotificationKind.CIRCULATION_EMAIL,
            "delayed",
            ("delayed", "the mail system is still trying"),
        ),
    ],
)
async def test_a_bounced_email_to_staff_marks_its_timeline_line(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    kind: NotificationKind,
    action: Any,
    expected: tuple[str, str],
) -> None:
    """ "CARE Team alerted" must not read as if the team had the alert when its mail system
    reported the address gone."""
    await given(sessions, patron_email(), routed(crisis=kind is NotificationKind.CRISIS_ALERT))
    key, mid = f"staff-{kind.value}", f"staff-{kind.value}@refdesk.tccd.edu"
    staff = requested(key).model_copy(update={"kind": kind, "recipient": "care@tccd.edu"})
    sent = announced(key=key, mid=f"<{mid}>").model_copy(update={"kind": kind, "text": None})
    await given(sessions, staff, sent)
    assert await delivery(sessions, key) == ("sent", None)
    await given(sessions, bounce(action, "5.1.1" if action == "failed" else "4.4.1", mid=mid))
    assert await delivery(sessions, key) == expected
    view = (await client.get(f"/conversations/{CID}", headers=bearer("mgarcia"))).json()
    [line] = [m for m in view["messages"] if m["id"] == key]
    assert line["direction"] == "event"
    assert line["delivery"] == {"state": expected[0], "reason": expected[1]}
