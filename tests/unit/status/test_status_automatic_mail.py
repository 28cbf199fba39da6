"""Mail a mail system sent (an out-of-office reply, a bounce) is a line of its conversation but
nobody's message: the queue still says what the patron wrote and since when, it reopens and
reassigns nothing, the desk statistics do not count it, a staff email answers the patron's
message rather than it, and a conversation only such mail opened stays off the desk until a
person writes or the router routes it (SQLite; PostgreSQL too)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from automatic_mail import (
    CID,
    OOF_TEXT,
    PATRON_MID,
    TEXT,
    auto_reply,
    bounce,
    feed,
    patron_email,
    routed,
)
from prometheus_client import REGISTRY
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, FakePublisher, batch, bearer, given

from services.status import metrics, queue
from services.status.conversations import retention
from services.status.models import Conversation, TranscriptEntry
from services.status.stats.models import DeskStat
from shared.events import (
    Automatic,
    Bounce,
    ConversationClaimed,
    ConversationClosed,
    CrisisAcknowledged,
    InteractionReceived,
    NotificationRequested,
    StaffReplyContext,
)
from shared.topics import NOTIFICATIONS

ONLY = "email-auto-only"
QUEUE_FACTS = (
    "opened_at",
    "last_message_at",
    "last_patron_at",
    "last_interaction_id",
    "preview",
    "subject",
    "patron_name",
    "patron_contact",
    "state",
    "closed_at",
    "assignee",
    "blocked",
)
"""What the queue and the desk's actions read of the patron: automatic mail changes none."""


async def facts(sessions: async_sessionmaker[AsyncSession], cid: str = CID) -> dict[str, Any]:
    async with sessions() as session:
        conv = await session.get(Conversation, cid)
    assert conv is not None
    return {name: getattr(conv, name) for name in QUEUE_FACTS}


async def listed(client: httpx.AsyncClient, staff_id: str = "dkim") -> dict[str, Any]:
    """The open queue as GET /conversations gives it, by conversation id."""
    items = (await client.get("/conversations", headers=bearer(staff_id))).json()["items"]
    return {row["conversation_id"]: row for row in items}


@pytest.mark.parametrize(
    ("mail", "kind", "automatic"),
    [
        (auto_reply(), "auto_reply", "auto_reply"),
        (bounce(mid=None), "bounce", "bounce"),
        (bounce("delayed", "4.4.1", mid=None), "bounce_delayed", "bounce"),
    ],
    ids=["auto-reply", "bounce", "delay"],
)
async def test_automatic_mail_is_a_line_of_its_conversation_but_not_the_patrons_message(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    mail: InteractionReceived,
    kind: str,
    automatic: str,
) -> None:
    await given(sessions, patron_email(), routed())
    before, row_before = await facts(sessions), (await listed(client))[CID]
    changes = len(await feed(sessions))
    await given(sessions, mail)
    assert await facts(sessions) == before
    row = (await listed(client))[CID]
    assert (row["preview"], row["subject"], row["waiting"]) == (
        row_before["preview"],
        row_before["subject"],
        row_before["waiting"],
    )
    assert row["preview"] == TEXT
    assert (await feed(sessions))[changes:] == [(CID, "automatic")]  # open consoles refetch it
    view = (await client.get(f"/conversations/{CID}", headers=bearer("mgarcia"))).json()
    lines = [(m["direction"], m["kind"], m["automatic"]) for m in view["messages"]]
    assert lines == [("in", "message", None), ("event", "routed", None), ("in", kind, automatic)]
    assert view["messages"][-1]["author"] == "mail-system"
    assert view["messages"][-1]["text"] == mail.text


async def test_automatic_mail_reopens_nothing_and_keeps_the_assignee(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # an out-of-office reply to the survey after the close, to a librarian now offline
    await given(
        sessions,
        patron_email(),
        routed(),
        ConversationClaimed(conversation_id=CID, staff_id="mgarcia", at=T0 + timedelta(minutes=1)),
    )
    assigned = await facts(sessions)
    await given(sessions, auto_reply(minutes=5))
    assert await facts(sessions) == assigned and assigned["assignee"] == "mgarcia"
    close = ConversationClosed(
        conversation_id=CID, channel=patron_email().channel, closed_at=T0 + timedelta(minutes=9)
    )
    await given(sessions, close)
    closed = await facts(sessions)
    await given(sessions, auto_reply(minutes=30, n=2), bounce(minutes=31))
    assert await facts(sessions) == closed and closed["state"] == "closed"
    async with sessions() as session:
        kinds = await session.scalars(
            select(TranscriptEntry.kind)
            .where(TranscriptEntry.conversation_id == CID, TranscriptEntry.direction == "in")
            .order_by(TranscriptEntry.at)
        )
        assert list(kinds) == ["message", "auto_reply", "auto_reply", "bounce"]


async def test_automatic_mail_into_a_purged_conversation_is_dropped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    close = ConversationClosed(
        conversation_id=CID, channel=patron_email().channel, closed_at=T0 + timedelta(minutes=9)
    )
    await given(sessions, patron_email(), routed(), close)
    async with sessions() as session:
        conv = await session.get(Conversation, CID)
        assert conv is not None
        conv.purged_at = T0 + timedelta(days=400)
        await session.commit()
    done = await batch(sessions, [("late-oof", auto_reply(minutes=60 * 24 * 400))])
    assert done == [False]
    async with sessions() as session:
        conv = await session.get(Conversation, CID)
        line = await session.get(TranscriptEntry, auto_reply().interaction_id)
    assert conv is not None and conv.purged_at is not None and conv.state == "closed"
    assert line is None


async def test_a_conversation_only_mail_systems_wrote_to_stays_off_the_desk_until_routed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await given(sessions, auto_reply(ONLY), bounce(cid=ONLY, minutes=21))
    for staff_id in ("dkim", "mgarcia"):  # a supervisor sees all, a librarian the desk's own
        assert ONLY not in await listed(client, staff_id)
    opened = await client.get(f"/conversations/{ONLY}", headers=bearer("dkim"))
    assert opened.status_code == 404
    async with sessions() as session:
        assert await queue.open_rows(session, [ONLY]) == []  # consoles get no row for it
        await metrics.refresh(session=session, now=T0 + timedelta(hours=1))
        # read before any await: the broker tier's session status app refreshes these gauges too
        unrouted = {"department": "unrouted"}  # nobody waits on it: the gauges leave it out
        get = REGISTRY.get_sample_value
        assert get("refdesk_queue_oldest_waiting_age_seconds", unrouted) is None
        assert get("refdesk_queue_open_conversations", {**unrouted, "channel": "email"}) is None
    # the crisis net escalates it: now the desk sees it
    await given(sessions, routed(ONLY, crisis=True, minutes=20))
    row = (await listed(client, "mgarcia"))[ONLY]
    assert (row["crisis"], row["preview"]) == (True, None)
    opened = await client.get(f"/conversations/{ONLY}", headers=bearer("dkim"))
    assert opened.status_code == 200
    assert [m["automatic"] for m in opened.json()["messages"]] == [
        "auto_reply",
        None,  # the routing line
        "bounce",
    ]


@pytest.mark.parametrize("person_first", [False, True], ids=["mail-first", "person-first"])
async def test_a_person_writing_puts_it_on_the_desk_from_their_message_in_either_order(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], person_first: bool
) -> None:
    events: list[BaseModel] = [auto_reply(ONLY, minutes=5), patron_email(ONLY, minutes=8)]
    await given(sessions, *(events[::-1] if person_first else events))
    conv = await facts(sessions, ONLY)
    person = T0 + timedelta(minutes=8)
    assert (conv["opened_at"], conv["last_message_at"], conv["last_patron_at"]) == (
        person,
        person,
        person,
    )
    assert (conv["preview"], conv["patron_contact"]) == (TEXT, "alex.rivera@my.tccd.edu")
    assert ONLY in await listed(client)


async def test_automatic_mail_is_no_question_in_the_desk_statistics(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    close = ConversationClosed(
        conversation_id=CID,
        channel=patron_email().channel,
        closed_at=T0 + timedelta(minutes=9),
        closed_by="mgarcia",
        read_scale=2,
        topic="citation",
    )
    await given(sessions, patron_email(), routed(), close)

    async def stats() -> list[dict[str, Any]]:
        async with sessions() as session:
            found = await session.scalars(select(DeskStat).order_by(DeskStat.conversation_id))
            return [{c.key: getattr(s, c.key) for c in DeskStat.__table__.columns} for s in found]

    async def summary() -> dict[str, Any]:
        day = {"from": T0.date().isoformat(), "to": T0.date().isoformat()}
        params = {**day, "group_by": "channel"}
        found = await client.get("/reports/summary", params=params, headers=bearer("dkim"))
        totals: dict[str, Any] = found.json()["totals"]
        return totals

    before, totals = await stats(), await summary()
    assert before[0]["closed_at"] is not None and totals["questions"] == 1
    # an out-of-office reply to the survey and a bounce after the close; another conversation
    # only mail systems wrote to
    await given(
        sessions,
        auto_reply(minutes=20),
        bounce(minutes=21),
        auto_reply(ONLY, minutes=22),
        bounce("delayed", "4.4.1", cid=ONLY, minutes=23),
    )
    assert await stats() == before
    assert await summary() == totals


async def test_a_staff_email_answers_the_patrons_message_not_an_automatic_reply(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await given(sessions, patron_email(), routed(), auto_reply(minutes=20), bounce(minutes=21))
    body = {"text": "Here is the APA guide: https://libguides.tccd.edu/apa"}
    sent = await client.post(f"/conversations/{CID}/replies", json=body, headers=bearer("mgarcia"))
    assert sent.status_code == 202
    (command,) = publisher.on(NOTIFICATIONS.name)
    assert isinstance(command, NotificationRequested)
    assert command.interaction_id == patron_email().interaction_id
    context = StaffReplyContext.model_validate(command.context)
    assert (context.in_reply_to, context.references) == (PATRON_MID, [PATRON_MID])


def test_the_bounce_of_an_event_is_what_the_line_kind_reads() -> None:
    """The line kinds, from the event's fields (a bounce that gives no details is a failure)."""
    from services.status.conversations.transcript import automatic_kind

    plain = auto_reply().model_copy(update={"automatic": Automatic.BOUNCE, "bounce": None})
    delayed = plain.model_copy(update={"bounce": Bounce(action="delayed")})
    assert [automatic_kind(e) for e in (auto_reply(), plain, delayed)] == [
        "auto_reply",
        "bounce",
        "bounce_delayed",
    ]
    assert auto_reply().text == OOF_TEXT


async def test_retention_purges_a_conversation_the_desk_never_saw_from_its_last_message(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A conversation only mail systems wrote to is never closed (nobody sees it to close it),
    so retention counts from its last message: the bounce's text, which names the patron's
    address, does not stay for ever. An open conversation of the desk written to since stays."""
    await given(sessions, auto_reply(ONLY), bounce(cid=ONLY, minutes=21))
    await given(sessions, patron_email(), routed())  # an open conversation of the desk
    days = 30
    # the desk's patron writes again on day 5: counted from then, it is kept
    await given(sessions, patron_email(minutes=5 * 24 * 60, mid="<again@mail.example.edu>"))
    await given(sessions, bounce(cid=ONLY, minutes=60 * 24))  # its newest line, a day later

    async def purge(after: timedelta) -> None:
        async with sessions() as session:
            await retention.purge_expired(session=session, now=T0 + after, retention_days=days)
            await session.commit()

    await purge(timedelta(days=days, hours=1))  # 30 days after its first line, not its last
    async with sessions() as session:
        assert (await session.get(Conversation, ONLY)).purged_at is None  # type: ignore[union-attr]
    await purge(timedelta(days=days + 1, hours=1))
    async with sessions() as session:
        hidden = await session.get(Conversation, ONLY)
        desk = await session.get(Conversation, CID)
        lines = await session.scalars(
            select(TranscriptEntry.id).where(TranscriptEntry.conversation_id == ONLY)
        )
        assert hidden is not None and hidden.purged_at is not None
        assert hidden.state == "closed" and hidden.patron_contact is None and list(lines) == []
        assert desk is not None and desk.purged_at is None  # written to on day 5
    # a replayed or late line of it stays out, as a purged conversation's does
    assert await batch(sessions, [("replayed", auto_reply(ONLY))]) == [False]


async def test_a_crisis_in_an_automatic_reply_after_the_close_reopens_the_conversation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Automatic mail reopens nothing, but a crisis the router decided on it is never left in a
    closed conversation: it is back on the desk, pinned as a crisis, for the sweep to chase."""
    close = ConversationClosed(
        conversation_id=CID, channel=patron_email().channel, closed_at=T0 + timedelta(minutes=9)
    )
    await given(sessions, patron_email(), routed(), close, auto_reply(minutes=30))
    assert (await facts(sessions))["state"] == "closed"
    await given(sessions, routed(crisis=True, minutes=30))
    conv = await facts(sessions)
    assert (conv["state"], conv["closed_at"], conv["assignee"]) == ("open", None, None)
    row = (await listed(client))[CID]
    assert row["crisis"] is True
    # once acknowledged, a crisis decision older than a close (a replay) leaves the close alone
    await given(sessions, CrisisAcknowledged(conversation_id=CID, staff_id="lokafor", at=T0))
    await given(
        sessions, ConversationClosed(**{**close.model_dump(), "closed_at": T0 + timedelta(hours=2)})
    )
    await given(sessions, routed(crisis=True, minutes=60))
    assert (await facts(sessions))["state"] == "closed"
