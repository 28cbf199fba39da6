"""What the SMS provider reported about a text, on its transcript line: a report after the
notifier's announcement or before it, reports out of order, a report nobody's line carries,
an announcement redelivered after a report, replays, retention, and the JSON transcript."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, arrive, batch, bearer, given

from services.status.conversations import retention, sms_reports
from services.status.models import DeskChange, SmsReport, TranscriptEntry
from shared.events import (
    Channel,
    DeliveryState,
    InteractionReceived,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Patron,
    SmsStatusReported,
)

CID = "sms-report"
KEY = "reply-sms-report-1"
SID = "SM0123456789abcdef0123456789abcdef"
PHONE = "+18175550142"

_ids = itertools.count(1)


def requested(key: str = KEY) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=key,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.SMS,
        recipient=PHONE,
        conversation_id=CID,
        requested_at=T0,
        context={"text": "NE is open until 9 tonight.", "staff_id": "mgarcia"},
    )


def announced(
    state: DeliveryState = DeliveryState.SENT,
    *,
    key: str = KEY,
    sid: str | None = SID,
    reason: str = "timeout",
    error_code: int | None = None,
) -> NotificationDelivered:
    return NotificationDelivered(
        idempotency_key=key,
        conversation_id=CID,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.SMS,
        state=state,
        reason=reason if state is DeliveryState.FAILED else None,
        error_code=error_code,
        text="NE is open until 9 tonight." if state is DeliveryState.SENT else None,
        message_id=sid if state is DeliveryState.SENT else None,
        segments=1,
        at=T0 + timedelta(seconds=2),
    )


def report(
    status: str, code: int | None = None, *, seconds: float = 5, sid: str = SID
) -> SmsStatusReported:
    return SmsStatusReported(
        provider_id=sid,
        status=status,
        error_code=code,
        reported_at=T0 + timedelta(seconds=seconds),
    )


async def delivery(
    sessions: async_sessionmaker[AsyncSession], key: str = KEY
) -> tuple[str | None, str | None]:
    async with sessions() as session:
        line = await session.get(TranscriptEntry, key)
    assert line is not None
    return line.delivery_state, line.delivery_reason


async def kept(sessions: async_sessionmaker[AsyncSession], sid: str = SID) -> Any:
    async with sessions() as session:
        row = await session.get(SmsReport, sid)
    return None if row is None else (row.status, row.error_code)


async def feed(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessions() as session:
        found = await session.execute(
            select(DeskChange.conversation_id, DeskChange.what).order_by(DeskChange.id)
        )
    return [(cid, what) for cid, what in found]


@pytest.fixture
async def conversation(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given an SMS conversation on the desk."""
    await arrive(sessions, CID, channel=Channel.SMS, minutes_ago=5)


@pytest.mark.usefixtures("conversation")
@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        ("delivered", None, ("delivered", None)),
        ("read", None, ("delivered", None)),
        ("undelivered", 30007, ("undelivered", "filtered by the carrier")),
        ("failed", 30005, ("undelivered", "unknown number")),
        ("canceled", None, ("undelivered", "the carrier did not deliver it")),
    ],
)
async def test_a_final_report_after_the_announcement_sets_the_lines_delivery(
    sessions: async_sessionmaker[AsyncSession],
    status: str,
    code: int | None,
    expected: tuple[str, str | None],
) -> None:
    await given(sessions, requested(), announced())
    before = len(await feed(sessions))
    await given(sessions, report(status, code))
    assert await delivery(sessions) == expected
    assert await kept(sessions) == (status, code)
    assert (await feed(sessions))[before:] == [(CID, "delivery")]  # open consoles refetch it


@pytest.mark.usefixtures("conversation")
async def test_a_report_before_the_announcement_is_kept_and_applied_when_the_line_is_written(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given(sessions, requested(), report("undelivered", 30003))
    assert await delivery(sessions) == ("queued", None)
    assert await kept(sessions) == ("undelivered", 30003)
    await given(sessions, announced())
    assert await delivery(sessions) == ("undelivered", "unreachable handset")


@pytest.mark.usefixtures("conversation")
async def test_a_report_before_any_line_and_the_command_last_keeps_the_carriers_word(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given(sessions, report("delivered"), announced(), requested())
    assert await delivery(sessions) == ("delivered", None)


@pytest.mark.usefixtures("conversation")
@pytest.mark.parametrize("report_first", [True, False])
async def test_a_report_and_its_announcement_in_one_batch_in_either_order(
    sessions: async_sessionmaker[AsyncSession], report_first: bool
) -> None:
    await given(sessions, requested())
    pair: list[tuple[str, BaseModel]] = [("a", announced()), ("r", report("undelivered", 30006))]
    await batch(sessions, pair[::-1] if report_first else pair)
    assert await delivery(sessions) == ("undelivered", "landline or unreachable carrier")


@pytest.mark.usefixtures("conversation")
@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(["queued", "sending", "sent", "delivered"])),
    ids="-".join,
)
async def test_reports_in_any_order_end_with_the_most_final(
    sessions: async_sessionmaker[AsyncSession], order: tuple[str, ...]
) -> None:
    # Twilio's own times follow the message's progress; the callbacks arrive in `order`
    seconds = {"queued": 1, "sending": 2, "sent": 3, "delivered": 4}
    await given(sessions, requested(), announced())
    await given(sessions, *(report(status, seconds=seconds[status]) for status in order))
    assert await delivery(sessions) == ("delivered", None)
    assert await kept(sessions) == ("delivered", None)


@pytest.mark.usefixtures("conversation")
async def test_a_sent_posted_after_delivered_changes_nothing_even_when_reported_later(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given(sessions, report("undelivered", 30007, seconds=5), report("sent", seconds=9))
    assert await kept(sessions) == ("undelivered", 30007)
    await given(sessions, requested(), announced())
    assert await delivery(sessions) == ("undelivered", "filtered by the carrier")


@pytest.mark.usefixtures("conversation")
async def test_two_final_reports_end_the_same_in_either_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first, second = report("undelivered", 30003, seconds=5), report("delivered", seconds=8)
    await given(sessions, requested(), announced(), second, first)
    assert await delivery(sessions) == ("delivered", None)
    other = "reply-sms-report-2"
    other_sid = "SMfedcba9876543210fedcba9876543210"
    await given(
        sessions,
        requested(other),
        announced(key=other, sid=other_sid),
        report("delivered", seconds=8, sid=other_sid),
        report("undelivered", 30003, seconds=5, sid=other_sid),
    )
    assert await delivery(sessions, other) == ("delivered", None)


@pytest.mark.usefixtures("conversation")
async def test_a_report_for_an_unknown_text_is_kept_and_touches_no_line(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # the patron's own message carries a provider id too: a report never lands on it
    inbound = "SMaaaabbbbccccddddeeeeffff00001111"
    await given(
        sessions,
        InteractionReceived(
            interaction_id="i-inbound",
            conversation_id=CID,
            channel=Channel.SMS,
            provider="twilio",
            provider_message_id=inbound,
            patron=Patron(contact=PHONE),
            text="thanks",
            received_at=T0,
        ),
        requested(),
        announced(),
    )
    before = await feed(sessions)
    done = await batch(
        sessions, [("u1", report("undelivered", 30007, sid=inbound)), ("u2", report("delivered"))]
    )
    assert done == [True, True]
    await given(sessions, report("undelivered", 30005, sid="SMnobodyknowsthis0000000000000000"))
    async with sessions() as session:
        patron_line = await session.get(TranscriptEntry, "i-inbound")
    assert patron_line is not None and patron_line.delivery_state is None
    assert await kept(sessions, "SMnobodyknowsthis0000000000000000") == ("undelivered", 30005)
    assert await delivery(sessions) == ("delivered", None)
    assert (await feed(sessions))[len(before) :] == [(CID, "delivery")]


@pytest.mark.usefixtures("conversation")
@pytest.mark.parametrize("final", ["delivered", "undelivered"])
async def test_a_redelivered_announcement_after_a_report_never_erases_it(
    sessions: async_sessionmaker[AsyncSession], final: str
) -> None:
    await given(sessions, requested(), announced(), report(final, 30004))
    expected = await delivery(sessions)
    assert expected[0] == final
    # the notifier announces again (a new event: a retried publish after a crash), then fails
    await given(sessions, announced(), announced(DeliveryState.FAILED), requested())
    assert await delivery(sessions) == expected


@pytest.mark.usefixtures("conversation")
async def test_a_text_the_notifier_could_not_send_stays_failed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given(sessions, requested(), announced(DeliveryState.FAILED), report("delivered"))
    assert await delivery(sessions) == ("failed", "timeout")


@pytest.mark.usefixtures("conversation")
@pytest.mark.parametrize(
    ("code", "words"),
    [
        (21610, "the patron replied STOP"),
        (21211, "not a valid phone number"),
        (21614, "not a mobile number"),
        (21612, "the SMS provider refused it (error 21612)"),
        (None, "rejected 400"),
    ],
)
async def test_a_text_twilio_refused_says_why_in_the_desks_words(
    sessions: async_sessionmaker[AsyncSession], code: int | None, words: str
) -> None:
    """Twilio answered the notifier's create 400 with an error code: no status callback will
    come, so the announcement's code is put in the same words a callback's would be."""
    refused = announced(DeliveryState.FAILED, reason="rejected 400", error_code=code)
    await given(sessions, requested(), refused)
    assert await delivery(sessions) == ("failed", words)


@pytest.mark.usefixtures("conversation")
async def test_redelivered_and_replayed_reports_end_in_the_same_state(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events: list[tuple[str, BaseModel]] = [
        ("q", requested()),
        ("a", announced()),
        ("r1", report("sent", seconds=3)),
        ("r2", report("undelivered", 30034, seconds=6)),
    ]
    assert await batch(sessions, events) == [True, True, True, True]
    state = await delivery(sessions), await kept(sessions)
    changes = len(await feed(sessions))
    assert await batch(sessions, events) == [False, False, False, False]  # redelivered: dropped
    assert (await delivery(sessions), await kept(sessions)) == state
    assert len(await feed(sessions)) == changes
    # the same report again under a new id (a replay into a rebuilt projection) changes nothing
    await given(sessions, report("undelivered", 30034, seconds=6), report("sent", seconds=3))
    assert (await delivery(sessions), await kept(sessions)) == state
    assert state == (
        ("undelivered", "sending number not registered for A2P 10DLC"),
        ("undelivered", 30034),
    )
    assert len(await feed(sessions)) == changes


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (30003, "unreachable handset"),
        (30004, "blocked by the recipient"),
        (30005, "unknown number"),
        (30006, "landline or unreachable carrier"),
        (30007, "filtered by the carrier"),
        (30008, "unknown error"),
        (30034, "sending number not registered for A2P 10DLC"),
        (21610, "the patron replied STOP"),
        (21211, "not a valid phone number"),
        (21614, "not a mobile number"),
        (30410, "error 30410"),
        (None, "the carrier did not deliver it"),
    ],
)
def test_why_a_text_was_not_delivered_in_the_desks_words(code: int | None, words: str) -> None:
    assert sms_reports.reason(code) == words


async def test_reports_are_dropped_with_the_transcript_retention(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await given(sessions, report("delivered", seconds=0), report("sent", sid="SMnew0000"))
    now = T0 + timedelta(days=30)
    async with sessions() as session:
        await session.execute(
            SmsReport.__table__.update()
            .where(SmsReport.provider_id == "SMnew0000")
            .values(reported_at=now - timedelta(days=1))
        )
        await retention.purge_expired(session=session, now=now, retention_days=7)
        await session.commit()
    assert await kept(sessions) is None
    assert await kept(sessions, "SMnew0000") == ("sent", None)


@pytest.mark.usefixtures("conversation")
async def test_the_transcript_api_gives_the_carriers_word(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await given(sessions, requested(), announced(), report("undelivered", 21610))
    view = (await client.get(f"/conversations/{CID}", headers=bearer("mgarcia"))).json()
    line = next(m for m in view["messages"] if m["id"] == KEY)
    assert line["delivery"] == {"state": "undelivered", "reason": "the patron replied STOP"}
