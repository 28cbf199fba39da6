"""Conversations through the API with a fake publisher: transcripts, replies, notes, macros,
who may do what, the crisis gate, search, the access log and retention."""

from __future__ import annotations

import asyncio
import unicodedata
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, Clock, FakePublisher, arrive, bearer

from services.status.auth import Actor
from services.status.conversations import actions
from services.status.errors import Conflict
from services.status.handlers import Assigning, apply
from services.status.models import Conversation, TranscriptAccess, TranscriptEntry
from services.status.periodic import tick
from services.status.resources import Resources
from services.status.stats.models import DeskStat
from shared.events import (
    Action,
    Attachment,
    CareReportFiled,
    CareReportWithdrawn,
    Channel,
    ConversationClosed,
    DeliveryState,
    HandoffContext,
    InteractionReceived,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Patron,
    Priority,
    RoutingDecided,
    StaffNoteAdded,
    StaffReplyContext,
)
from shared.topics import DESK, INTERACTIONS, NOTIFICATIONS, ROUTING

PATRON_MID = "CAF=abc123@mail.example.edu"


MARIA = Actor(id="mgarcia", role="staff", departments=("reference",))
JAMES = Actor(id="jnguyen", role="staff", departments=("reference", "campus-ne"))


async def count_lines(
    sessions: async_sessionmaker[AsyncSession], cid: str, *where: ColumnElement[bool]
) -> int:
    """How many transcript lines of the conversation match `where`."""
    async with sessions() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(TranscriptEntry)
            .where(TranscriptEntry.conversation_id == cid, *where)
        )
    return int(found or 0)


async def patron_writes(
    sessions: async_sessionmaker[AsyncSession],
    cid: str,
    text: str,
    *,
    channel: Channel,
    minutes_ago: int = 0,
    message_id: str | None = None,
    name: str | None = None,
    subject: str | None = None,
    contact: str | None = None,
) -> None:
    """Given a further message from the patron."""
    at = T0 - timedelta(minutes=minutes_ago)
    iid = f"in-{cid}-{minutes_ago}-{len(text)}"
    async with sessions() as session:
        await apply(
            session,
            event_id=iid,
            assigning=Assigning(),
            data=InteractionReceived(
                interaction_id=iid,
                conversation_id=cid,
                channel=channel,
                provider="test",
                provider_message_id=message_id or iid,
                patron=Patron(contact=contact, name=name),
                text=text,
                subject=subject,
                received_at=at,
                attachments=[Attachment(name="syllabus.pdf", size=48213)] if subject else [],
            ),
        )
        await session.commit()


async def test_transcript_in_order_with_preview_automated_messages_and_delivery_states(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await arrive(sessions, "e-1", channel=Channel.EMAIL, minutes_ago=700, overnight=True)
    await patron_writes(
        sessions,
        "e-1",
        "I need peer-reviewed articles on urban heat islands for ENGL 1302.",
        channel=Channel.EMAIL,
        minutes_ago=699,
        message_id=PATRON_MID,
        subject="Articles",
        name="Dana Whitfield",
    )
    ack = NotificationRequested(
        idempotency_key="ack-e-1",
        kind=NotificationKind.AFTER_HOURS_ACK,
        channel=Channel.EMAIL,
        recipient="pat@example.edu",
        conversation_id="e-1",
        requested_at=T0 - timedelta(minutes=698),
        context={"next_open": "Monday 8:00"},
    )
    async with sessions() as session:
        await apply(session, event_id="n1", data=ack, assigning=Assigning())
        await session.commit()
    listing = (await client.get("/conversations", headers=bearer("mgarcia"))).json()["items"]
    row = next(r for r in listing if r["conversation_id"] == "e-1")
    assert row["preview"].startswith("I need peer-reviewed articles")
    assert row["waiting"] == "11 h 40 min"
    assert row["channel_label"] == "Email"
    view = (await client.get("/conversations/e-1", headers=bearer("mgarcia"))).json()
    directions = [(m["direction"], m["kind"]) for m in view["messages"]]
    assert directions == [
        ("in", "message"),
        ("event", "routed"),
        ("in", "message"),
        ("out", "after_hours_ack"),
    ]
    queued = view["messages"][-1]
    assert queued["delivery"] == {"state": "queued", "reason": None}
    assert queued["automated"] == "After-hours acknowledgement"
    assert view["messages"][2]["attachments"] == [
        {"name": "syllabus.pdf", "size": 48213, "content_type": None}
    ]
    delivered = NotificationDelivered(
        idempotency_key="ack-e-1",
        conversation_id="e-1",
        kind=NotificationKind.AFTER_HOURS_ACK,
        channel=Channel.EMAIL,
        state=DeliveryState.SENT,
        text="The desk is closed until Monday.",
        message_id="<ack@refdesk.local>",
        at=T0 - timedelta(minutes=697),
    )
    late_failure = delivered.model_copy(update={"state": DeliveryState.FAILED, "reason": "timeout"})
    async with sessions() as session:
        await apply(session, event_id="d1", data=delivered, assigning=Assigning())
        await apply(session, event_id="d2", data=late_failure, assigning=Assigning())
        await session.commit()
    view = (await client.get("/conversations/e-1", headers=bearer("mgarcia"))).json()
    sent = view["messages"][-1]
    assert (sent["text"], sent["delivery"]["state"]) == ("The desk is closed until Monday.", "sent")
    async with sessions() as session:
        reads = await session.scalar(
            select(func.count())
            .select_from(TranscriptAccess)
            .where(
                TranscriptAccess.conversation_id == "e-1", TranscriptAccess.staff_id == "mgarcia"
            )
        )
    assert reads == 2


async def test_email_reply_threads_under_the_patrons_message_and_is_sent_once(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await patron_writes(
        sessions,
        "e-2",
        "Where can I find census data?",
        channel=Channel.EMAIL,
        message_id=PATRON_MID,
        subject="Census data",
        contact="pat@example.edu",
    )
    body = {"text": "Try data.census.gov, and our Statista database."}
    first = await client.post("/conversations/e-2/replies", json=body, headers=bearer("mgarcia"))
    again = await client.post("/conversations/e-2/replies", json=body, headers=bearer("mgarcia"))
    assert first.status_code == again.status_code == 202
    assert first.json()["message_id"] == again.json()["message_id"]
    commands = publisher.on(NOTIFICATIONS.name)
    assert len({c.idempotency_key for c in commands}) == 1  # type: ignore[attr-defined]
    command = commands[0]
    assert isinstance(command, NotificationRequested)
    assert (command.kind, command.channel, command.recipient) == (
        NotificationKind.STAFF_REPLY,
        Channel.EMAIL,
        "pat@example.edu",
    )
    context = StaffReplyContext.model_validate(command.context)
    assert (context.subject, context.in_reply_to, context.references) == (
        "Re: Census data",
        PATRON_MID,
        [PATRON_MID],
    )
    assert context.staff_name == "Maria Garcia"  # signs the email, above the desk's name
    assert await count_lines(sessions, "e-2", TranscriptEntry.direction == "out") == 1
    view = (await client.get("/conversations/e-2", headers=bearer("mgarcia"))).json()
    assert view["assignee"] == "mgarcia"  # answering takes the conversation
    assert view["messages"][-1]["author"] == "mgarcia"


async def test_a_staff_transfer_of_an_email_ticket_answers_the_patrons_email(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """The hand-off of a transfer by staff started a thread of its own ("Your question is
    going to the Writing Center [refdesk #...]"), apart from the patron's email."""
    await patron_writes(
        sessions,
        "e-moved",
        "I need peer-reviewed articles on nursing burnout",
        channel=Channel.EMAIL,
        message_id=PATRON_MID,
        subject="Articles for NURS 1300",
        contact="pat@example.edu",
    )
    moved = await client.post(
        "/conversations/e-moved/transfer",
        json={"department": "writing-center"},
        headers=bearer("mgarcia"),
    )
    assert moved.status_code == 200, moved.text
    [handoff] = [
        c
        for c in publisher.on(NOTIFICATIONS.name)
        if isinstance(c, NotificationRequested) and c.kind is NotificationKind.HANDOFF
    ]
    context = HandoffContext.model_validate(handoff.context)
    assert (context.in_reply_to, context.subject) == (PATRON_MID, "Articles for NURS 1300")


async def test_a_hand_off_message_with_a_variable_left_in_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A reply with "{reply_by}" left in was refused; a hand-off message went out raw."""
    await patron_writes(sessions, "s-var", "can i get a tutor", channel=Channel.SMS)
    moved = await client.post(
        "/conversations/s-var/transfer",
        json={"department": "tutoring", "note": "Someone will reply {reply_by} soon."},
        headers=bearer("mgarcia"),
    )
    assert moved.status_code == 422, moved.text
    assert "{variable}" in moved.json()["detail"]


async def test_the_same_words_sent_again_later_are_a_reply_of_their_own(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    """A double click is one reply; "Are you still there?" sent again two minutes later is
    another (an outside probe's second nudge answered 202 and was never sent)."""
    await patron_writes(
        sessions, "s-nudge", "can u help", channel=Channel.SMS, contact="+18175550177"
    )
    body = {"text": "Are you still there?"}
    first = await client.post(
        "/conversations/s-nudge/replies", json=body, headers=bearer("mgarcia")
    )
    clock.advance(5)
    double = await client.post(
        "/conversations/s-nudge/replies", json=body, headers=bearer("mgarcia")
    )
    clock.advance(120)
    later = await client.post(
        "/conversations/s-nudge/replies", json=body, headers=bearer("mgarcia")
    )
    clock.advance(30)
    again = await client.post(
        "/conversations/s-nudge/replies", json=body, headers=bearer("mgarcia")
    )
    ids = [r.json()["message_id"] for r in (first, double, later, again)]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    keys = {c.idempotency_key for c in publisher.on(NOTIFICATIONS.name)}  # type: ignore[attr-defined]
    assert len(keys) == 2
    assert await count_lines(sessions, "s-nudge", TranscriptEntry.direction == "out") == 2


async def test_a_note_posted_again_is_one_note_and_the_same_words_later_another(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    """A note answered 503 ("saved; the broker has not confirmed it yet") and posted again
    made two notes (an outside audit); posted again it is the same note, published again under
    its id, and the same words two minutes later are a note of their own."""
    await patron_writes(sessions, "s-note", "hello?", channel=Channel.SMS, contact="+18175550178")
    body = {"text": "Called the patron, no answer."}
    first = await client.post("/conversations/s-note/notes", json=body, headers=bearer("mgarcia"))
    clock.advance(4)
    retry = await client.post("/conversations/s-note/notes", json=body, headers=bearer("mgarcia"))
    clock.advance(120)
    later = await client.post("/conversations/s-note/notes", json=body, headers=bearer("mgarcia"))
    ids = [r.json()["note_id"] for r in (first, retry, later)]
    assert [r.status_code for r in (first, retry, later)] == [201, 201, 201]
    assert ids[0] == ids[1] != ids[2]
    notes = [e for e in publisher.on(DESK.name) if isinstance(e, StaffNoteAdded)]
    published = [e.note_id for e in notes]
    assert published == [i.removeprefix("note:") for i in ids]
    assert await count_lines(sessions, "s-note", TranscriptEntry.direction == "note") == 2


async def test_two_closes_at_once_close_it_once(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """Four closes at once (two librarians, double clicks) answered 200 twice and wrote two
    "Closed" lines in an outside probe's timeline."""
    await patron_writes(sessions, "e-close", "thanks!", channel=Channel.EMAIL, contact="p@x.edu")
    answers = await asyncio.gather(
        *(
            client.post("/conversations/e-close/close", json={}, headers=bearer("mgarcia"))
            for _ in range(4)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    closes = [e for e in publisher.on(INTERACTIONS.name) if isinstance(e, ConversationClosed)]
    assert len(closes) == 1
    assert await count_lines(sessions, "e-close", TranscriptEntry.kind == "closed") == 1


async def test_of_two_librarians_at_once_one_goes_through_and_the_other_is_told_who(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """Two librarians pressed Send on the same unclaimed ticket within a second: both replies
    reached the patron; two claims both said "the conversation is yours"."""
    await patron_writes(sessions, "e-race", "ILL?", channel=Channel.EMAIL, contact="p@x.edu")
    replies = await asyncio.gather(
        client.post(
            "/conversations/e-race/replies", json={"text": "Yes!"}, headers=bearer("mgarcia")
        ),
        client.post(
            "/conversations/e-race/replies", json={"text": "We can."}, headers=bearer("jnguyen")
        ),
    )
    # the second is refused: 409 naming the first when both read the conversation free, 403
    # ("only the assignee...") when it read it after the first had taken it
    codes = sorted(r.status_code for r in replies)
    assert codes in ([202, 403], [202, 409]), [r.text for r in replies]
    refused = next(r for r in replies if r.status_code != 202)
    first = "Maria Garcia" if replies[0].status_code == 202 else "James Nguyen"
    if refused.status_code == 409:
        assert f"{first} took this conversation a moment ago" in refused.json()["detail"]
    assert len(publisher.on(NOTIFICATIONS.name)) == 1
    await patron_writes(sessions, "e-claim", "hours?", channel=Channel.EMAIL, contact="q@x.edu")
    claims = await asyncio.gather(
        client.post("/conversations/e-claim/claim", headers=bearer("mgarcia")),
        client.post("/conversations/e-claim/claim", headers=bearer("jnguyen")),
    )
    assert sorted(c.status_code for c in claims) in ([200, 403], [200, 409]), [
        c.text for c in claims
    ]
    view = (await client.get("/conversations/e-claim", headers=bearer("mgarcia"))).json()
    winner = "mgarcia" if claims[0].status_code == 200 else "jnguyen"
    assert view["assignee"] == winner


async def test_a_ticket_closed_with_no_reply_asks_for_no_survey(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """A study-room email closed unanswered sent the patron "We have answered your
    question"; unless staff ask for it, the survey follows a reply only."""
    cases: dict[str, dict[str, Any]] = {
        "e-quiet": {},
        "e-answered": {},
        "e-asked": {"survey": True},
        # a wrong number told so, then set aside as not a question: nobody to thank
        "e-wrong": {"topic": "not-a-question"},
        "e-wrong-asked": {"topic": "not-a-question", "survey": True},
    }
    for cid in cases:
        await patron_writes(sessions, cid, "study rooms?", channel=Channel.EMAIL, contact="p@x.edu")
    for cid in ("e-answered", "e-wrong", "e-wrong-asked"):
        await client.post(
            f"/conversations/{cid}/replies",
            json={"text": "Yes, book online."},
            headers=bearer("mgarcia"),
        )
    for cid, body in cases.items():
        answer = await client.post(
            f"/conversations/{cid}/close", json=body, headers=bearer("mgarcia")
        )
        assert answer.status_code == 200, answer.text
    surveys = {
        e.conversation_id: e.survey
        for e in publisher.on(INTERACTIONS.name)
        if isinstance(e, ConversationClosed)
    }
    assert surveys == {
        "e-quiet": False,
        "e-answered": True,
        "e-asked": True,
        "e-wrong": False,
        "e-wrong-asked": True,
    }


async def test_an_email_ticket_closed_names_the_patrons_latest_email_for_the_survey(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """The survey is threaded under the patron's latest email (it started a thread of its
    own); a text thread has no email to answer."""
    await patron_writes(
        sessions,
        "e-thread",
        "is my book overdue?",
        channel=Channel.EMAIL,
        contact="p@x.edu",
        subject="Overdue book",
        message_id="<first@mail.x.edu>",
        minutes_ago=30,
    )
    await patron_writes(
        sessions,
        "e-thread",
        "also, can I renew it?",
        channel=Channel.EMAIL,
        contact="p@x.edu",
        subject="Re: Overdue book",
        message_id="<second@mail.x.edu>",
        minutes_ago=10,
    )
    await patron_writes(sessions, "s-thread", "hours?", channel=Channel.SMS, contact="+18175550142")
    for cid in ("e-thread", "s-thread"):
        replied = await client.post(
            f"/conversations/{cid}/replies", json={"text": "Yes."}, headers=bearer("mgarcia")
        )
        assert replied.status_code == 202, replied.text
        closed = await client.post(
            f"/conversations/{cid}/close", json={}, headers=bearer("mgarcia")
        )
        assert closed.status_code == 200, closed.text
    events = {
        e.conversation_id: e
        for e in publisher.on(INTERACTIONS.name)
        if isinstance(e, ConversationClosed)
    }
    email = events["e-thread"]
    assert email.in_reply_to == "<second@mail.x.edu>"
    assert email.references[0] == "<first@mail.x.edu>"
    assert email.references[-1] == "<second@mail.x.edu>"
    assert email.subject == "Overdue book"
    text = events["s-thread"]
    assert (text.in_reply_to, text.references, text.subject) == (None, [], None)


async def test_a_lone_surrogate_in_a_reply_is_dropped_not_a_500(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await patron_writes(sessions, "e-sur", "hello", channel=Channel.EMAIL, contact="p@example.edu")
    answer = await client.post(
        "/conversations/e-sur/replies",
        content=b'{"text": "a\\ud800b"}',
        headers={**bearer("mgarcia"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 202, answer.text
    [command] = publisher.on(NOTIFICATIONS.name)
    assert StaffReplyContext.model_validate(command.context).text == "ab"  # type: ignore[attr-defined]


async def test_a_text_reply_longer_than_one_message_is_refused_with_the_reason(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await patron_writes(
        sessions,
        "s-long",
        "what databases have nursing articles?",
        channel=Channel.SMS,
        contact="+18175550142",
    )
    await patron_writes(
        sessions, "e-long", "nursing databases?", channel=Channel.EMAIL, contact="p@example.edu"
    )
    long = (
        "CINAHL Complete and ProQuest Nursing are the two to start with. " * 26
    )  # 1,664 with its last space
    refused = await client.post(
        "/conversations/s-long/replies", json={"text": long}, headers=bearer("mgarcia")
    )
    assert refused.status_code == 422
    assert "at most 1,600 characters (this one has 1,663)" in refused.json()["detail"]
    assert publisher.on(NOTIFICATIONS.name) == []
    fits = await client.post(
        "/conversations/s-long/replies", json={"text": long[:1600]}, headers=bearer("mgarcia")
    )
    assert fits.status_code == 202, fits.text
    by_email = await client.post(
        "/conversations/e-long/replies", json={"text": long}, headers=bearer("mgarcia")
    )
    assert by_email.status_code == 202


async def test_a_spanish_speaking_patron_gets_the_macros_and_handoff_in_spanish(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """A librarian-shift probe's Spanish patrons were sent English macros ("Crisis resources
    (988)" included) and an English hand-off."""
    await patron_writes(
        sessions, "s-es", "hola, necesito citar en APA", channel=Channel.SMS, contact="+18175550190"
    )
    spanish = RoutingDecided(
        decision_id="d-es",
        interaction_id="i-s-es",
        conversation_id="s-es",
        channel=Channel.SMS,
        action=Action.ANSWER,
        department="reference",
        priority=Priority.NORMAL,
        overnight=False,
        lang="es",
        policy_version="t",
        decided_at=T0,
    )
    async with sessions() as session:
        await apply(session, event_id="d-es", data=spanish, assigning=Assigning())
        await session.commit()
    crisis = await client.get(
        "/conversations/s-es/macros/crisis_resources", headers=bearer("mgarcia")
    )
    assert crisis.json()["text"].startswith("Si usted u otra persona está en peligro ahora")
    moved = await client.post(
        "/conversations/s-es/transfer",
        json={"department": "writing-center"},
        headers=bearer("mgarcia"),
    )
    assert moved.status_code == 200, moved.text
    [handoff] = [c for c in publisher.on(NOTIFICATIONS.name) if c.kind is NotificationKind.HANDOFF]  # type: ignore[attr-defined]
    assert handoff.context["handoff_text"].startswith("Pasé su pregunta al Writing Center")


async def test_macros_fill_variables_or_refuse(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await patron_writes(
        sessions, "s-1", "is the library open sunday", channel=Channel.SMS, contact="+18175550123"
    )
    await patron_writes(
        sessions, "s-2", "hi", channel=Channel.SMS, name="Alex Romero", contact="+18175550124"
    )
    refused = await client.get("/conversations/s-1/macros/greeting", headers=bearer("mgarcia"))
    assert refused.status_code == 422
    assert "patron_first_name" in refused.json()["detail"]
    filled = await client.get("/conversations/s-2/macros/greeting", headers=bearer("mgarcia"))
    assert filled.json()["text"].startswith("Hi Alex, this is the TCC Library")
    raw = await client.post(
        "/conversations/s-1/replies",
        json={"text": "Hi {patron_first_name}!"},
        headers=bearer("mgarcia"),
    )
    assert raw.status_code == 422
    referral = await client.post(
        "/conversations/s-1/replies",
        json={"macro": "counseling_referral"},
        headers=bearer("mgarcia"),
    )
    assert referral.status_code == 202
    [command] = publisher.on(NOTIFICATIONS.name)
    assert "https://" in command.context["text"]  # type: ignore[attr-defined]
    # the survey is the close's, never a macro's as well (it would reach the patron twice)
    survey = await client.post(
        "/conversations/s-1/replies", json={"macro": "survey"}, headers=bearer("mgarcia")
    )
    assert survey.status_code == 404


async def test_refused_actions_answer_403_and_change_nothing(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await arrive(sessions, "r-1", channel=Channel.CHAT)
    assert (await client.post("/conversations/r-1/claim", headers=bearer("mgarcia"))).is_success
    for path, body in [
        ("transfer", {"department": "writing-center", "note": "made up"}),
        ("close", None),
        ("replies", {"text": "hello"}),
    ]:
        refused = await client.post(
            f"/conversations/r-1/{path}", json=body, headers=bearer("rpatel")
        )
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("application/problem+json")
        # in words a librarian reads: who has it (it said "only the assignee or a supervisor")
        verb = {"replies": "reply in"}.get(path, path)
        assert refused.json()["detail"] == (
            f"Maria Garcia has this conversation: only they or a supervisor may {verb} it"
        )
    note = await client.post(
        "/conversations/r-1/notes",
        json={"text": "Patron asked about APA too"},
        headers=bearer("jnguyen"),
    )
    assert note.status_code == 201  # a colleague may add a note
    view = (await client.get("/conversations/r-1", headers=bearer("mgarcia"))).json()
    assert (view["state"], view["department"], view["assignee"]) == ("open", "reference", "mgarcia")
    assert [m["direction"] for m in view["messages"]].count("note") == 1
    assert [type(e).__name__ for _, e, _ in publisher.sent] == [
        "ConversationClaimed",
        "StaffNoteAdded",
    ]
    assert all(t == DESK.name for t, _, _ in publisher.sent)
    wc = await client.get("/conversations/r-1", headers=bearer("tbrooks"))
    assert wc.status_code == 200  # the desk's own conversations are visible to all staff
    await arrive(sessions, "wc-1", channel=Channel.CHAT, department="writing-center")
    hidden = await client.get("/conversations/wc-1", headers=bearer("tbrooks"))
    assert hidden.status_code == 403


async def test_a_crisis_must_be_acknowledged_first_and_only_by_the_right_people(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await arrive(sessions, "x-1", channel=Channel.SMS, department="care-team", crisis=True)
    blocked = await client.post(
        "/conversations/x-1/replies", json={"text": "Are you safe?"}, headers=bearer("mgarcia")
    )
    assert blocked.status_code == 409
    view = (await client.get("/conversations/x-1", headers=bearer("mgarcia"))).json()
    assert view["permitted"]["reply"] is False and view["permitted"]["acknowledge"] is True
    wc = await client.post("/conversations/x-1/acknowledge", headers=bearer("rpatel"))
    assert wc.status_code == 403
    ok = await client.post("/conversations/x-1/acknowledge", headers=bearer("mgarcia"))
    assert ok.json()["acknowledged"] is True
    sent = await client.post(
        "/conversations/x-1/replies",
        json={"text": "Are you safe right now?"},
        headers=bearer("mgarcia"),
    )
    assert sent.status_code == 202


async def test_filing_the_care_report_is_recorded_once_by_whoever_sees_the_conversation(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    """The desk's procedures: whoever believes a student is in crisis files the CARE Team's
    incident report. Recorded before the crisis is acknowledged too, on a closed conversation,
    by anyone who may see it; the first record stands, and a replica applying the event from
    refdesk.desk reaches the same row and timeline line."""
    await arrive(sessions, "cr-1", channel=Channel.CHAT, department="care-team", crisis=True)
    view = (await client.get("/conversations/cr-1", headers=bearer("mgarcia"))).json()
    assert view["permitted"]["care_report"] is True and view["care_report"] is None
    hidden = await client.post("/conversations/cr-1/care-report", headers=bearer("rpatel"))
    assert hidden.status_code == 403  # writing center staff do not see a CARE Team crisis
    filed = await client.post("/conversations/cr-1/care-report", headers=bearer("mgarcia"))
    assert filed.status_code == 200, filed.text
    first = {"filed_at": T0.isoformat(), "filed_by": "mgarcia"}
    assert filed.json()["care_report"] == first | {"records": [first]}
    assert filed.json()["acknowledged"] is False  # recording it acknowledges nothing
    clock.advance(60)
    pressed_again = await client.post("/conversations/cr-1/care-report", headers=bearer("mgarcia"))
    assert pressed_again.json()["care_report"] == first | {"records": [first]}
    clock.advance(60)
    colleague = await client.post("/conversations/cr-1/care-report", headers=bearer("lokafor"))
    second = {"filed_at": (T0 + timedelta(minutes=2)).isoformat(), "filed_by": "lokafor"}
    # the earliest record is shown; a colleague who filed it too keeps a record of their own
    assert colleague.json()["care_report"] == first | {"records": [first, second]}
    events = [e for e in publisher.on(DESK.name) if isinstance(e, CareReportFiled)]
    assert [(e.conversation_id, e.staff_id) for e in events] == [
        ("cr-1", "mgarcia"),
        ("cr-1", "lokafor"),
    ]
    lines = (await client.get("/conversations/cr-1", headers=bearer("lokafor"))).json()
    texts = [m["text"] for m in lines["messages"] if m["direction"] == "event"]
    assert texts.count("CARE Team incident report filed by Maria Garcia") == 1
    assert texts.count("CARE Team incident report filed by Linda Okafor") == 1
    # the event as another replica reads it from refdesk.desk: the same row, one line
    await arrive(sessions, "cr-2", channel=Channel.SMS)
    replayed = CareReportFiled(conversation_id="cr-2", staff_id="jnguyen", at=T0)
    async with sessions() as session:
        for n in range(2):
            await apply(session, event_id=f"care-{n}", data=replayed, assigning=Assigning())
        await session.commit()
    other = (await client.get("/conversations/cr-2", headers=bearer("mgarcia"))).json()
    replica = {"filed_at": T0.isoformat(), "filed_by": "jnguyen"}
    assert other["care_report"] == replica | {"records": [replica]}
    assert [m["text"] for m in other["messages"]].count(
        "CARE Team incident report filed by James Nguyen"
    ) == 1
    # a closed conversation (the report is often filed after the chat ends)
    await arrive(sessions, "cr-3", channel=Channel.CHAT)
    assert (await client.post("/conversations/cr-3/close", headers=bearer("mgarcia"))).is_success
    late = await client.post("/conversations/cr-3/care-report", headers=bearer("mgarcia"))
    assert late.status_code == 200 and late.json()["care_report"]["filed_by"] == "mgarcia"
    missing = await client.post("/conversations/nope/care-report", headers=bearer("mgarcia"))
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_a_care_report_recorded_by_mistake_is_taken_back_by_who_recorded_it(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    """A record pressed by mistake, or for a report never sent, could not be corrected:
    supervisors took the report as done. Who recorded it, or a supervisor, takes it back; the
    conversation shows none filed again, and a new record stands whatever replays."""
    await arrive(sessions, "cr-undo", channel=Channel.CHAT, department="care-team", crisis=True)
    undo = "/conversations/cr-undo/care-report/withdraw"
    none = await client.post(undo, headers=bearer("mgarcia"))
    assert none.status_code == 409
    filed = await client.post("/conversations/cr-undo/care-report", headers=bearer("mgarcia"))
    assert filed.status_code == 200
    other = await client.post(undo, headers=bearer("jnguyen"))
    assert other.status_code == 403, other.text  # another librarian may not
    assert "only who recorded" in other.json()["detail"]
    clock.advance(60)
    back = await client.post(undo, headers=bearer("mgarcia"))
    assert back.status_code == 200, back.text
    assert back.json()["care_report"] is None
    view = (await client.get("/conversations/cr-undo", headers=bearer("lokafor"))).json()
    assert view["care_report"] is None and view["permitted"]["care_report"] is True
    texts = [m["text"] for m in view["messages"] if m["direction"] == "event"]
    assert "A CARE Team report record taken back by Maria Garcia" in texts
    [withdrawn] = [e for e in publisher.on(DESK.name) if isinstance(e, CareReportWithdrawn)]
    assert (withdrawn.staff_id, withdrawn.filed_by) == ("mgarcia", "mgarcia")
    assert withdrawn.filed_at == T0
    # recorded again, by someone else: a supervisor may take anyone's back
    clock.advance(60)
    again = await client.post("/conversations/cr-undo/care-report", headers=bearer("jnguyen"))
    assert again.json()["care_report"]["filed_by"] == "jnguyen"
    # the earlier withdrawal, replayed by another replica, leaves the new record standing
    async with sessions() as session:
        await apply(session, event_id="withdrawn-again", data=withdrawn, assigning=Assigning())
        await session.commit()
    view = (await client.get("/conversations/cr-undo", headers=bearer("mgarcia"))).json()
    assert view["care_report"]["filed_by"] == "jnguyen"
    filed = [m["text"] for m in view["messages"] if m["kind"] == "care_report"]
    assert filed == [  # both records stay in the transcript
        "CARE Team incident report filed by Maria Garcia",
        "CARE Team incident report filed by James Nguyen",
    ]
    by_supervisor = await client.post(undo, headers=bearer("lokafor"))
    assert by_supervisor.status_code == 200 and by_supervisor.json()["care_report"] is None
    # applied by another replica from refdesk.desk: the same row cleared
    await arrive(sessions, "cr-undo-2", channel=Channel.SMS)
    async with sessions() as session:
        filed_event = CareReportFiled(conversation_id="cr-undo-2", staff_id="jnguyen", at=T0)
        taken = CareReportWithdrawn(
            conversation_id="cr-undo-2",
            staff_id="jnguyen",
            filed_by="jnguyen",
            filed_at=T0,
            at=T0 + timedelta(minutes=1),
        )
        await apply(session, event_id="filed-2", data=filed_event, assigning=Assigning())
        await apply(session, event_id="withdrawn-2", data=taken, assigning=Assigning())
        await session.commit()
    replica = (await client.get("/conversations/cr-undo-2", headers=bearer("mgarcia"))).json()
    assert replica["care_report"] is None


async def test_a_closed_conversation_permits_only_what_a_closed_one_takes(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """`permitted.reply` read true on a closed conversation, whose reply was refused 409."""
    await arrive(sessions, "c-done", channel=Channel.SMS)
    assert (await client.post("/conversations/c-done/close", headers=bearer("mgarcia"))).is_success
    view = (await client.get("/conversations/c-done", headers=bearer("mgarcia"))).json()
    permitted = view["permitted"]
    assert not any(permitted[a] for a in ("reply", "claim", "transfer", "close", "convert"))
    assert permitted["note"] and permitted["care_report"] and permitted["block"]
    refused = await client.post(
        "/conversations/c-done/replies", json={"text": "one more"}, headers=bearer("mgarcia")
    )
    assert refused.status_code == 409


async def consume_desk_events(
    sessions: async_sessionmaker[AsyncSession], publisher: FakePublisher
) -> None:
    """Apply what the actions published to refdesk.desk, as the consumer does (each once)."""
    async with sessions() as session:
        for n, data in enumerate(publisher.on(DESK.name)):
            await apply(session, event_id=f"desk-{n}", data=data, assigning=Assigning())
        await session.commit()


async def test_a_colleagues_care_report_record_stands_when_the_first_is_taken_back(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    """One record per conversation had lost a colleague's: while Maria's stood, James pressing
    it kept nothing, and when Maria took hers back the conversation showed no report filed
    although James had filed one (an outside review). Each keeps a record; taking one back
    leaves the other shown, in the statistics too, and a replica applying the events agrees."""
    await arrive(sessions, "cr-two", channel=Channel.CHAT, department="care-team", crisis=True)
    assert (
        await client.post("/conversations/cr-two/care-report", headers=bearer("mgarcia"))
    ).is_success
    clock.advance(60)
    assert (
        await client.post("/conversations/cr-two/care-report", headers=bearer("jnguyen"))
    ).is_success
    clock.advance(60)
    back = await client.post(
        "/conversations/cr-two/care-report/withdraw", headers=bearer("mgarcia")
    )
    assert back.status_code == 200, back.text
    james = {"filed_at": (T0 + timedelta(minutes=1)).isoformat(), "filed_by": "jnguyen"}
    assert back.json()["care_report"] == james | {"records": [james]}
    [withdrawn] = [e for e in publisher.on(DESK.name) if isinstance(e, CareReportWithdrawn)]
    assert (withdrawn.staff_id, withdrawn.filed_by, withdrawn.filed_at) == (
        "mgarcia",
        "mgarcia",
        T0,
    )
    await consume_desk_events(sessions, publisher)
    async with sessions() as session:
        stat = await session.get(DeskStat, "cr-two")
        assert stat is not None and stat.care_report is True
    # Maria has no record left to take back; James takes his, and none is shown
    again = await client.post(
        "/conversations/cr-two/care-report/withdraw", headers=bearer("mgarcia")
    )
    assert again.status_code == 403
    assert (
        await client.post("/conversations/cr-two/care-report/withdraw", headers=bearer("jnguyen"))
    ).is_success
    view = (await client.get("/conversations/cr-two", headers=bearer("mgarcia"))).json()
    assert view["care_report"] is None
    await consume_desk_events(sessions, publisher)
    async with sessions() as session:
        stat = await session.get(DeskStat, "cr-two")
        assert stat is not None and stat.care_report is False
    # the same events applied by another replica to a conversation of its own, in order
    await arrive(sessions, "cr-two-replica", channel=Channel.SMS)
    filed = [
        CareReportFiled(conversation_id="cr-two-replica", staff_id=who, at=at)
        for who, at in (("mgarcia", T0), ("jnguyen", T0 + timedelta(minutes=1)))
    ]
    taken = CareReportWithdrawn(
        conversation_id="cr-two-replica",
        staff_id="mgarcia",
        filed_by="mgarcia",
        filed_at=T0,
        at=T0 + timedelta(minutes=2),
    )
    async with sessions() as session:
        for n, data in enumerate([*filed, taken, filed[0]]):  # the first filing replayed last
            await apply(session, event_id=f"two-{n}", data=data, assigning=Assigning())
        await session.commit()
    replica = (await client.get("/conversations/cr-two-replica", headers=bearer("mgarcia"))).json()
    assert replica["care_report"] == james | {"records": [james]}
    lines = [m["text"] for m in replica["messages"] if m["kind"].startswith("care_report")]
    assert lines == [
        "CARE Team incident report filed by Maria Garcia",
        "CARE Team incident report filed by James Nguyen",
        "A CARE Team report record taken back by Maria Garcia",
    ]


async def test_the_same_librarian_recording_the_care_report_twice_at_once_makes_one_record(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Pressed twice at the same moment on two replicas (a double click through a balancer),
    both had been told they filed it and two events went out: a staff member has one standing
    record. Here one action reads the conversation, the other replica records it meanwhile,
    then the first one writes."""
    await arrive(sessions, "cr-race", channel=Channel.CHAT, department="care-team", crisis=True)
    jnguyen = Actor(id="jnguyen", role="staff", departments=("reference", "campus-ne"))
    async with sessions() as session:
        stale = await session.get(Conversation, "cr-race")  # read before the other replica wrote
        assert stale is not None and stale.care_report_at is None
        other = await client.post("/conversations/cr-race/care-report", headers=bearer("jnguyen"))
        assert other.json()["care_report"]["filed_by"] == "jnguyen"
        outcome = await actions.care_report_filed(
            session=session, conversation_id="cr-race", actor=jnguyen, now=T0 + timedelta(seconds=1)
        )
        await session.commit()
    assert outcome.events == [] and outcome.conv.care_report_by == "jnguyen"
    view = (await client.get("/conversations/cr-race", headers=bearer("mgarcia"))).json()
    assert [r["filed_by"] for r in view["care_report"]["records"]] == ["jnguyen"]


async def test_search_by_words_contact_and_date(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await patron_writes(
        sessions,
        "q-1",
        "Looking for sources on the Dust Bowl migration",
        channel=Channel.CHAT,
        minutes_ago=60 * 24 * 3,
    )
    await patron_writes(
        sessions,
        "q-2",
        "printer on 2nd floor is jammed",
        channel=Channel.SMS,
        contact="+18175550188",
    )
    found = (await client.get("/conversations?q=dust%20bowl", headers=bearer("mgarcia"))).json()
    assert [r["conversation_id"] for r in found["items"]] == ["q-1"]
    nothing = await client.get("/conversations?q=zeppelin", headers=bearer("mgarcia"))
    assert nothing.json()["items"] == []
    async with sessions() as session:
        logged = await session.execute(
            select(TranscriptAccess.conversation_id).where(TranscriptAccess.action == "search")
        )
        # a line per conversation a search showed, and one for a search that showed none
        # (a security probe: the log said a search happened, not whose words it showed)
        assert sorted(logged.scalars(), key=str) == [None, "q-1"]
    prefix = (await client.get("/conversations?q=print", headers=bearer("mgarcia"))).json()
    assert [r["conversation_id"] for r in prefix["items"]] == ["q-2"]
    by_contact = await client.get(
        "/conversations", params={"contact": "+18175550188"}, headers=bearer("mgarcia")
    )
    assert [r["conversation_id"] for r in by_contact.json()["items"]] == ["q-2"]
    for typed in ("817-555-0188", "(817) 555 0188", "8175550188", "+1 817.555.0188"):
        as_said = await client.get(
            "/conversations", params={"contact": typed}, headers=bearer("mgarcia")
        )
        assert [r["conversation_id"] for r in as_said.json()["items"]] == ["q-2"], typed
    day = (T0 - timedelta(days=3)).date().isoformat()
    dated = await client.get(
        "/conversations", params={"from": day, "to": day}, headers=bearer("mgarcia")
    )
    assert [r["conversation_id"] for r in dated.json()["items"]] == ["q-1"]


async def test_a_search_finds_words_with_or_without_their_accents(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """On PostgreSQL "Jose Garcia" had missed "José García" (SQLite's tokenizer folds
    diacritics, PostgreSQL's text index did not): a librarian typing a Spanish name without its
    accents found nothing. Both databases now read words without their diacritics."""
    await patron_writes(
        sessions,
        "q-accented",
        "Soy José García, ¿dónde está el café del campus?",
        channel=Channel.CHAT,
    )
    await patron_writes(
        sessions, "q-plain", "Maria Pena here, I renewed at the cafe", channel=Channel.CHAT
    )
    await patron_writes(
        sessions, "q-decomposed", "Nguye\u0302\u0303n asked about the quiz", channel=Channel.CHAT
    )

    async def found(q: str) -> list[str]:
        answer = await client.get("/conversations", params={"q": q}, headers=bearer("mgarcia"))
        assert answer.status_code == 200, answer.text
        return sorted(r["conversation_id"] for r in answer.json()["items"])

    assert await found("jose garcia") == ["q-accented"]
    assert await found("JOSÉ GARCÍA") == ["q-accented"]
    assert await found("donde") == ["q-accented"]
    assert await found("María Peña") == ["q-plain"]
    assert await found("cafe") == ["q-accented", "q-plain"]
    assert await found("nguyễn") == ["q-decomposed"]
    assert await found("nguyen") == ["q-decomposed"]
    assert await found(unicodedata.normalize("NFD", "José García")) == ["q-accented"]
    async with sessions() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
    # a word whose marks are not accents: found whole, typed as written
    await patron_writes(sessions, "q-hindi", "नमस्ते, मुझे किताब चाहिए", channel=Channel.CHAT)
    assert await found("नमस्ते") == ["q-hindi"]
    if postgres:  # a stroke no decomposition removes (SQLite's tokenizer keeps it)
        await patron_writes(sessions, "q-stroke", "Tôi là Đức, cần mượn sách", channel=Channel.SMS)
        assert await found("duc") == ["q-stroke"]
        assert await found("Đức") == ["q-stroke"]


async def test_a_search_finds_the_patron_by_name_and_not_by_refdesks_own_messages(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The header said "Email Begoña Ortíz" and a search for "Begoña" found nothing (names were
    not searched); "daño" found every conversation sent the crisis resources, not the three
    patrons who wrote it (an outside review). Names are searched, as subjects are, without
    accents; refdesk's own messages are not searched, what staff wrote is."""
    await patron_writes(
        sessions, "q-named", "tengo una multa", channel=Channel.EMAIL, name="Begoña Ortíz"
    )
    await patron_writes(
        sessions, "q-other", "¿Tienen libros de Ortega y Gasset?", channel=Channel.CHAT
    )

    async def found(q: str) -> list[str]:
        answer = await client.get("/conversations", params={"q": q}, headers=bearer("mgarcia"))
        assert answer.status_code == 200, answer.text
        return sorted(r["conversation_id"] for r in answer.json()["items"])

    for typed in ("begona", "Begoña", "ORTÍZ", "ortiz begoña", "Begoña Ortíz", "ortí"):
        assert await found(typed) == ["q-named"], typed
    assert await found("ortega") == ["q-other"]
    assert await found("begoña ortega") == []
    assert await found("%") == []  # no word: nothing, not everything
    assert await found("a_o") == []
    resources = NotificationRequested(
        idempotency_key="res-q-other",
        kind=NotificationKind.CRISIS_RESOURCES,
        channel=Channel.CHAT,
        recipient="chat",
        conversation_id="q-other",
        requested_at=T0,
        context={},
    )
    reply = resources.model_copy(
        update={
            "idempotency_key": "reply-q-named",
            "kind": NotificationKind.STAFF_REPLY,
            "conversation_id": "q-named",
            "context": {"text": "Lamento el daño al libro", "staff_id": "mgarcia"},
        }
    )
    async with sessions() as session:
        for n, (request, text_sent) in enumerate(
            [(resources, "Si piensa en hacerse daño, llame al 988"), (reply, None)]
        ):
            await apply(session, event_id=f"rq-{n}", data=request, assigning=Assigning())
            delivered = NotificationDelivered(
                idempotency_key=request.idempotency_key,
                conversation_id=request.conversation_id,
                kind=request.kind,
                channel=Channel.CHAT,
                state=DeliveryState.SENT,
                text=text_sent or str(request.context["text"]),
                at=T0 + timedelta(seconds=n),
            )
            await apply(session, event_id=f"dl-{n}", data=delivered, assigning=Assigning())
        await session.commit()
    assert await found("daño") == ["q-named"]
    assert await found("988") == []


async def test_a_search_refreshed_is_logged_once_an_hour(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    """The console refreshes an open search every minute: each refresh had written a search
    line per conversation shown, 96,000 rows a shift of disclosures nobody made (an outside
    review). The same conversations shown the same staff member again within the hour are not
    logged again; another staff member's search, or an hour later, is."""
    await patron_writes(sessions, "q-r", "Dust Bowl sources please", channel=Channel.CHAT)

    async def logged() -> list[tuple[str, str | None]]:
        async with sessions() as session:
            rows = await session.execute(
                select(TranscriptAccess.staff_id, TranscriptAccess.conversation_id)
                .where(TranscriptAccess.action == "search")
                .order_by(TranscriptAccess.id)
            )
            return [(r[0], r[1]) for r in rows]

    for _ in range(3):
        await client.get("/conversations?q=dust", headers=bearer("mgarcia"))
        await client.get("/conversations?q=zeppelin", headers=bearer("mgarcia"))
        clock.advance(60)
    await client.get("/conversations?q=dust", headers=bearer("jnguyen"))
    assert await logged() == [("mgarcia", "q-r"), ("mgarcia", None), ("jnguyen", "q-r")]
    clock.advance(3600)
    await client.get("/conversations?q=dust", headers=bearer("mgarcia"))
    assert (await logged())[-1] == ("mgarcia", "q-r") and len(await logged()) == 4


async def test_a_search_counts_every_match_it_may_show_and_lists_the_newest_first(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """After a year at the desk "renew" matched 20,000 conversations: the search took an
    arbitrary 500 of them before who may see what and the order were applied, so today's
    question was not among those listed and the total was wrong (an outside review). Every
    match the caller may see is counted, and a page lists what waits first, then the
    newest."""
    for n in range(4):  # another department's, out of NW Circulation's sight
        cid = f"wc-{n}"
        await arrive(sessions, cid, channel=Channel.CHAT, department="writing-center")
        await patron_writes(sessions, cid, "can I renew my tutoring slot?", channel=Channel.CHAT)
    for n in range(3):
        cid, days = f"nw-old-{n}", 300 - 100 * n
        await arrive(
            sessions,
            cid,
            channel=Channel.CHAT,
            department="nw-circulation",
            minutes_ago=days * 1440,
        )
        await patron_writes(
            sessions, cid, "can I renew my laptop?", channel=Channel.CHAT, minutes_ago=days * 1440
        )
    await arrive(sessions, "nw-today", channel=Channel.SMS, department="nw-circulation")
    await patron_writes(sessions, "nw-today", "renew my charger pls", channel=Channel.SMS)
    page = await client.get(
        "/conversations", params={"q": "renew", "limit": 2}, headers=bearer("tbrooks")
    )
    assert page.status_code == 200, page.text
    assert [r["conversation_id"] for r in page.json()["items"]] == ["nw-today", "nw-old-2"]
    assert page.json()["total"] == 4
    everything = await client.get(
        "/conversations", params={"q": "renew", "limit": 500}, headers=bearer("lokafor")
    )
    assert everything.json()["total"] == len(everything.json()["items"]) == 8
    dated = await client.get(
        "/conversations",
        params={"from": (T0 - timedelta(days=1)).date().isoformat(), "limit": 1},
        headers=bearer("tbrooks"),
    )
    assert [r["conversation_id"] for r in dated.json()["items"]] == ["nw-today"]
    assert dated.json()["total"] == 1


async def test_retention_purges_closed_transcripts_and_a_replay_does_not_restore_them(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    resources: Resources,
    clock: Clock,
) -> None:
    await patron_writes(
        sessions,
        "old",
        "My TCC ID is 0123456, is my book overdue?",
        channel=Channel.SMS,
        contact="+18175550111",
    )
    # written to a day before the retention runs out: kept, open or not
    await patron_writes(
        sessions,
        "kept",
        "hello",
        channel=Channel.SMS,
        contact="+18175550112",
        minutes_ago=-(resources.settings.transcript_retention_days - 1) * 24 * 60,
    )
    # turned email first: the number it was texted from is student data too
    assert (await client.post("/conversations/old/claim", headers=bearer("mgarcia"))).is_success
    converted = await client.post(
        "/conversations/old/convert-to-email",
        json={"email": "ana.gomez@my.tccd.edu"},
        headers=bearer("mgarcia"),
    )
    assert converted.status_code == 200, converted.text
    closed = await client.post("/conversations/old/close", headers=bearer("mgarcia"))
    assert closed.status_code == 200
    clock.advance(resources.settings.transcript_retention_days * 86400 + 60)
    await tick(resources)
    view = (await client.get("/conversations/old", headers=bearer("mgarcia"))).json()
    assert view["purged"] is True and view["messages"] == []
    assert view["preview"] is None
    assert view["patron"] == {"name": None, "contact": None, "texted_from": None}
    kept = (await client.get("/conversations/kept", headers=bearer("mgarcia"))).json()
    assert len(kept["messages"]) == 1
    # a rewound consumer group replays the original message: it stays purged
    async with sessions() as session:
        await apply(
            session,
            event_id="replayed",
            assigning=Assigning(),
            data=InteractionReceived(
                interaction_id="in-old-0-41",
                conversation_id="old",
                channel=Channel.SMS,
                provider="test",
                provider_message_id="x",
                patron=Patron(contact="+18175550111"),
                text="My TCC ID is 0123456, is my book overdue?",
                received_at=T0,
            ),
        )
        await session.commit()
    view = (await client.get("/conversations/old", headers=bearer("mgarcia"))).json()
    assert view["messages"] == []


async def test_the_sweep_deletes_processed_ids_no_topic_can_hold_again(
    sessions: async_sessionmaker[AsyncSession], resources: Resources, clock: Clock
) -> None:
    """status_processed_events grew for ever (about six rows per interaction): the sweep
    deletes ids recorded before the retention of every topic status reads, and a day."""
    from datetime import UTC, datetime

    from services.status.models import PROCESSED

    await patron_writes(sessions, "p-1", "can i renew my book", channel=Channel.SMS)
    async with sessions() as session:
        held = (await session.execute(select(func.count()).select_from(PROCESSED))).scalar()
    assert held
    days = resources.settings.raw_retention_days
    clock.now = datetime.now(UTC) + timedelta(days=days + 1) - timedelta(minutes=5)
    await tick(resources)
    async with sessions() as session:
        kept = (await session.execute(select(func.count()).select_from(PROCESSED))).scalar()
    assert kept == held  # still inside the retention and a day
    clock.advance(10 * 60)
    await tick(resources)
    async with sessions() as session:
        left = (await session.execute(select(func.count()).select_from(PROCESSED))).scalar()
    assert left == 0


async def test_an_open_conversation_silent_past_retention_is_closed_and_purged(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    resources: Resources,
    clock: Clock,
) -> None:
    """Answered and never closed (the queue keeps answered conversations open), a conversation
    kept its transcript, contact and preview without end (a privacy review)."""
    await patron_writes(
        sessions, "left-open", "my TCC ID is 0123456", channel=Channel.SMS, contact="+18175550113"
    )
    days = resources.settings.transcript_retention_days
    clock.advance(days * 86400 - 60)  # a minute before: kept
    await tick(resources)
    view = (await client.get("/conversations/left-open", headers=bearer("mgarcia"))).json()
    assert (view["state"], len(view["messages"])) == ("open", 1)
    clock.advance(120)
    await tick(resources)
    view = (await client.get("/conversations/left-open", headers=bearer("mgarcia"))).json()
    assert (view["state"], view["purged"], view["messages"]) == ("closed", True, [])
    assert view["patron"]["contact"] is None and view["preview"] is None
    queue = (await client.get("/conversations", headers=bearer("mgarcia"))).json()
    assert "left-open" not in [r["conversation_id"] for r in queue["items"]]


async def test_an_open_conversation_staff_answered_lately_is_kept(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    resources: Resources,
    clock: Clock,
) -> None:
    """Only the patron's messages counted: a conversation a librarian had replied to minutes
    before was closed and purged with the reply (an outside probe)."""
    await patron_writes(
        sessions, "worked", "my TCC ID is 0123456", channel=Channel.SMS, contact="+18175550114"
    )
    days = resources.settings.transcript_retention_days
    clock.advance(days * 86400 - 600)
    assert (await client.post("/conversations/worked/claim", headers=bearer("mgarcia"))).is_success
    reply = await client.post(
        "/conversations/worked/replies",
        json={"text": "Still looking into it."},
        headers=bearer("mgarcia"),
    )
    assert reply.status_code == 202, reply.text
    clock.advance(1200)  # the patron's message is past retention; the reply and claim are not
    await tick(resources)
    view = (await client.get("/conversations/worked", headers=bearer("mgarcia"))).json()
    assert (view["state"], view["purged"]) == ("open", False)


async def test_a_later_sender_in_the_thread_never_redirects_the_desks_replies(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await patron_writes(
        sessions,
        "e-9",
        "Can you help me find articles on wind energy?",
        channel=Channel.EMAIL,
        contact="pat@example.edu",
        minutes_ago=5,
    )
    # someone else writes into the same ticket (a forwarded copy, or a crafted ticket tag)
    await patron_writes(
        sessions,
        "e-9",
        "Send the answer here instead",
        channel=Channel.EMAIL,
        contact="someone.else@example.com",
    )
    sent = await client.post(
        "/conversations/e-9/replies",
        json={"text": "Here are three articles."},
        headers=bearer("mgarcia"),
    )
    assert sent.status_code == 202
    [command] = publisher.on(NOTIFICATIONS.name)
    assert command.recipient == "pat@example.edu"  # type: ignore[attr-defined]


async def test_timeline_lines_name_departments_and_staff_ids_only_where_no_name_is_known(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await arrive(sessions, "c-named", channel=Channel.CHAT, minutes_ago=10)
    claimed = await client.post("/conversations/c-named/claim", headers=bearer("mgarcia"))
    assert claimed.status_code == 200, claimed.text
    moved = await client.post(
        "/conversations/c-named/transfer",
        json={"department": "nw-circulation", "note": "NW Circulation will join."},
        headers=bearer("mgarcia"),
    )
    assert moved.status_code == 200, moved.text
    unknown = RoutingDecided(  # a staff id and a department this status does not know
        decision_id="d-unknown",
        interaction_id="i-c-named",
        conversation_id="c-named",
        channel=Channel.CHAT,
        department="campus-mars",
        overnight=False,
        policy_version="t",
        action=Action.TRANSFER,
        priority=Priority.NORMAL,
        decided_by="ghost-7",
        decided_at=T0,
    )
    async with sessions() as session:  # the consumer applies what was published
        published = [*publisher.on(DESK.name), *publisher.on(ROUTING.name), unknown]
        for n, data in enumerate(published):
            await apply(session, event_id=f"pub-{n}", data=data, assigning=Assigning())
        await session.commit()
    view = (await client.get("/conversations/c-named", headers=bearer("lokafor"))).json()
    events = [(m["text"], m["author"]) for m in view["messages"] if m["direction"] == "event"]
    # the names are what this checks; the staff transfer and the unknown decision may share
    # a time, and lines of one time have no order to rely on
    assert sorted(events) == sorted(
        [
            ("Routed to Reference Desk (answer)", "router"),
            ("Claimed by Maria Garcia", "mgarcia"),
            ("Transferred to NW Circulation by Maria Garcia", "mgarcia"),
            ("Transferred to campus-mars by ghost-7", "ghost-7"),
        ]
    )


async def test_the_first_email_after_converting_a_text_thread_answers_no_email(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    sid = "SM1022950f8d6e4a6b9c0d1e2f3a4b5c6d"
    await patron_writes(
        sessions,
        "s-conv",
        "can you email me the article list",
        channel=Channel.SMS,
        message_id=sid,
        contact="+18175550177",
    )
    url = "/conversations/s-conv/convert-to-email"
    incomplete = await client.post(url, json={"email": "ana.gomez@my"}, headers=bearer("lokafor"))
    assert incomplete.status_code == 422
    assert incomplete.json()["detail"] == "Enter a full address such as name@my.tccd.edu."
    # the pattern let these through and the notifier dead-lettered the reply (a security probe)
    for unsendable in ("<x>@y.zz", "ana gomez@my.tccd.edu", "a..b@my.tccd.edu", "a@b.test"):
        refused = await client.post(url, json={"email": unsendable}, headers=bearer("lokafor"))
        assert refused.status_code == 422, unsendable
        assert "such as name@my.tccd.edu" in refused.json()["detail"]
    done = await client.post(
        url, json={"email": "ana.gomez@my.tccd.edu"}, headers=bearer("lokafor")
    )
    assert done.status_code == 200, done.text
    sent = await client.post(
        "/conversations/s-conv/replies",
        json={"text": "Here is the list you asked for."},
        headers=bearer("lokafor"),
    )
    assert sent.status_code == 202, sent.text
    [command] = publisher.on(NOTIFICATIONS.name)
    assert isinstance(command, NotificationRequested)
    assert (command.channel, command.recipient) == (Channel.EMAIL, "ana.gomez@my.tccd.edu")
    context = StaffReplyContext.model_validate(command.context)
    # the MessageSid of a text is no Message-ID, and there is no patron email to say "Re:" to
    assert (context.subject, context.in_reply_to, context.references) == (None, None, [])


async def test_a_staff_only_macro_is_never_offered_or_sent_to_the_patron(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await patron_writes(
        sessions, "c-care", "i need help", channel=Channel.CHAT, contact="+18175550190"
    )
    filled = await client.get("/conversations/c-care/macros/care_report", headers=bearer("mgarcia"))
    assert filled.status_code == 422
    assert "staff only" in filled.json()["detail"]
    sent = await client.post(
        "/conversations/c-care/replies", json={"macro": "care_report"}, headers=bearer("mgarcia")
    )
    assert sent.status_code == 422
    assert publisher.on(NOTIFICATIONS.name) == []


async def test_a_reply_answers_the_patrons_own_email_not_another_senders_in_the_thread(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """A professor copied on the patron's email answered into it: the queue row took the
    professor's subject and words, and the librarian's reply answered the professor's email."""
    await patron_writes(
        sessions,
        "e-cc",
        "I need peer-reviewed articles on water policy.",
        channel=Channel.EMAIL,
        minutes_ago=10,
        message_id=PATRON_MID,
        subject="Water policy articles",
        contact="carlos@my.tccd.edu",
    )
    await patron_writes(
        sessions,
        "e-cc",
        "Carlos - also try the Texas Water Development Board reports. -- Prof. Ward",
        channel=Channel.EMAIL,
        minutes_ago=5,
        message_id="ward-reply-01@tccd.edu",
        subject="Re: Water policy articles",
        contact="hward@tccd.edu",
    )
    [row] = [
        r
        for r in (await client.get("/conversations", headers=bearer("mgarcia"))).json()["items"]
        if r["conversation_id"] == "e-cc"
    ]
    assert (row["subject"], row["preview"]) == (
        "Water policy articles",
        "I need peer-reviewed articles on water policy.",
    )
    body = {"text": "Here are three articles from Academic Search Complete."}
    sent = await client.post("/conversations/e-cc/replies", json=body, headers=bearer("mgarcia"))
    assert sent.status_code == 202
    [command] = publisher.on(NOTIFICATIONS.name)
    assert isinstance(command, NotificationRequested)
    context = StaffReplyContext.model_validate(command.context)
    assert (command.recipient, context.in_reply_to) == ("carlos@my.tccd.edu", PATRON_MID)
    assert context.subject == "Re: Water policy articles"


async def test_mail_sent_to_many_gets_no_hand_off_nor_survey_from_staff(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """An outside probe's list digest, transferred by a librarian, sent "Your question is going
    to the Northeast Campus Library" to the list; closed after a reply, the survey too."""
    await arrive(sessions, "bulk-1", channel=Channel.EMAIL, bulk=True)
    staff = bearer("mgarcia")
    assert (await client.post("/conversations/bulk-1/claim", headers=staff)).is_success
    reply = await client.post(
        "/conversations/bulk-1/replies", json={"text": "Thanks, noted."}, headers=staff
    )
    assert reply.status_code == 202  # a reply staff write themselves still goes
    moved = await client.post(
        "/conversations/bulk-1/transfer", json={"department": "campus-ne"}, headers=staff
    )
    assert moved.is_success
    kinds = [
        d.kind for d in publisher.on(NOTIFICATIONS.name) if isinstance(d, NotificationRequested)
    ]
    assert NotificationKind.HANDOFF not in kinds and NotificationKind.STAFF_REPLY in kinds
    view = (await client.get("/conversations/bulk-1", headers=bearer("dkim"))).json()
    assert view["bulk"] is True
    closed = await client.post(
        "/conversations/bulk-1/close", json={"survey": True}, headers=bearer("dkim")
    )
    assert closed.is_success
    (event,) = [d for d in publisher.on(INTERACTIONS.name) if isinstance(d, ConversationClosed)]
    assert event.survey is False


async def test_ones_own_claim_in_flight_does_not_refuse_ones_reply(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """An outside probe pressed Claim, then Send 150 ms later: the reply was refused with
    "Maria Garcia took this conversation a moment ago", her own name, and the page hid it."""
    from types import SimpleNamespace

    from services.status.conversations.actions import _hold, get
    from services.status.errors import Conflict

    await arrive(sessions, "race-1", channel=Channel.SMS)
    async with sessions() as reading, sessions() as claiming:
        conv = await get(session=reading, conversation_id="race-1")  # read unassigned
        claimed = await get(session=claiming, conversation_id="race-1")
        claimed.assignee = "mgarcia"
        await claiming.commit()
        read_before = SimpleNamespace(
            conversation_id="race-1", assignee=None, department=conv.department, crisis=False
        )
        await _hold(reading, conv, MARIA)  # her own claim: as she read it
        await reading.rollback()
        try:  # a colleague who read it before the claim
            await _hold(reading, read_before, JAMES)  # type: ignore[arg-type]
        except Conflict as refused:
            assert "Maria Garcia" in str(refused)
        else:
            raise AssertionError("a colleague's claim in between must refuse the action")


async def test_a_reply_meeting_the_routers_first_placement_is_told_what_happened(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A reference librarian answered a text the router had not placed yet; its decision (the
    Writing Center) landed in between and the refusal said "transferred to another department",
    a transfer nobody had made."""
    from services.status.conversations.actions import _hold, get
    from services.status.errors import Conflict

    await patron_writes(
        sessions,
        "unplaced-1",
        "how do i cite a video?",
        channel=Channel.SMS,
        contact="+18175550123",
    )
    async with sessions() as reading, sessions() as routing:
        conv = await get(session=reading, conversation_id="unplaced-1")
        assert conv.department is None  # on the desk, not routed yet
        placed = await get(session=routing, conversation_id="unplaced-1")
        placed.department = "writing-center"
        await routing.commit()
        try:
            await _hold(reading, conv, MARIA)
        except Conflict as refused:
            assert (
                str(refused)
                == "the router placed this conversation in another department a moment ago"
            )
        else:
            raise AssertionError("the router's placement in between must refuse the action")


async def test_a_reply_meeting_the_routers_placement_at_the_desk_goes_through(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A reference librarian answered an email the router had not placed yet; it then kept it
    at the reference desk, and the reply was refused as "placed in another department"."""
    from services.status.conversations.actions import _hold, get
    from services.status.errors import Conflict

    await patron_writes(
        sessions, "unplaced-2", "articles on heat islands?", channel=Channel.SMS, contact="+1817"
    )
    from types import SimpleNamespace

    async with sessions() as reading, sessions() as routing:
        conv = await get(session=reading, conversation_id="unplaced-2")
        assert conv.department is None
        read = SimpleNamespace(
            conversation_id="unplaced-2", assignee=None, department=None, crisis=False
        )  # as the page read it
        placed = await get(session=routing, conversation_id="unplaced-2")
        placed.department = "reference"
        await routing.commit()
        await _hold(reading, read, MARIA)  # type: ignore[arg-type]  # still hers to answer
        await reading.rollback()
        # but one that became a crisis meanwhile must be acknowledged first
        flagged = await get(session=routing, conversation_id="unplaced-2")
        flagged.crisis = True
        await routing.commit()
        try:
            await _hold(reading, read, MARIA)  # type: ignore[arg-type]
        except Conflict as refused:
            assert "became a crisis a moment ago" in str(refused)
        else:
            raise AssertionError("a crisis in between must refuse the action")


async def test_a_reply_too_long_is_refused_in_characters(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """It was refused as "Value should have at most 5000 items after validation"."""
    await patron_writes(sessions, "e-long", "hello", channel=Channel.EMAIL, contact="p@x.edu")
    answer = await client.post(
        "/conversations/e-long/replies", json={"text": "x" * 6653}, headers=bearer("mgarcia")
    )
    assert answer.status_code == 422
    assert "at most 5000 characters" in answer.text and "items" not in answer.text


async def test_a_macro_written_for_chat_is_not_sent_by_email(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """ "Thanks for chatting with the TCC Library" went out as an email (an outside probe)."""
    await patron_writes(sessions, "e-macro", "hello", channel=Channel.EMAIL, contact="p@x.edu")
    for call in (
        client.post(
            "/conversations/e-macro/replies", json={"macro": "closing"}, headers=bearer("mgarcia")
        ),
        client.get("/conversations/e-macro/macros/greeting", headers=bearer("mgarcia")),
    ):
        answer = await call
        assert answer.status_code == 422, answer.text
        assert "this conversation is email" in answer.json()["detail"]
    fine = await client.get("/conversations/e-macro/macros/care_report", headers=bearer("mgarcia"))
    assert fine.status_code in (200, 422)  # a staff-only macro says so; never "written for"
    assert "written for" not in fine.text


async def test_a_ticket_whose_every_reply_was_refused_asks_for_no_survey(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """A reply the patron's mail system refused (550) still counted as an answer, so the close
    sent a survey saying the question was answered, to an address that refuses mail."""
    for cid in ("e-refused", "e-reached"):
        await patron_writes(sessions, cid, "study rooms?", channel=Channel.EMAIL, contact="p@x.edu")
        replied = await client.post(
            f"/conversations/{cid}/replies", json={"text": "Yes."}, headers=bearer("mgarcia")
        )
        assert replied.status_code == 202, replied.text
    [refused_reply] = [
        e for e in publisher.on(NOTIFICATIONS.name) if e.conversation_id == "e-refused"
    ]
    async with sessions() as session:
        await apply(
            session,
            event_id="refused-1",
            data=NotificationDelivered(
                idempotency_key=refused_reply.idempotency_key,
                conversation_id="e-refused",
                kind=NotificationKind.STAFF_REPLY,
                channel=Channel.EMAIL,
                state=DeliveryState.FAILED,
                reason="rejected 550 5.1.1",
                at=T0 + timedelta(seconds=5),
            ),
            assigning=Assigning(),
        )
        await session.commit()
    for cid in ("e-refused", "e-reached"):
        closed = await client.post(
            f"/conversations/{cid}/close", json={}, headers=bearer("mgarcia")
        )
        assert closed.status_code == 200, closed.text
    surveys = {
        e.conversation_id: e.survey
        for e in publisher.on(INTERACTIONS.name)
        if isinstance(e, ConversationClosed)
    }
    assert surveys == {"e-refused": False, "e-reached": True}


async def test_a_close_after_a_message_the_closer_did_not_see_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The patron wrote "one more question" as Close was pressed: the close went through and
    a survey answered the question (12 of 12 times with the message up to 1.2 s before)."""
    await patron_writes(
        sessions,
        "s-late",
        "is the library open sunday",
        channel=Channel.SMS,
        minutes_ago=5,
        contact="+18175550190",
    )
    seen = (await client.get("/conversations/s-late", headers=bearer("mgarcia"))).json()
    last_seen = seen["messages"][-1]["id"]
    await patron_writes(
        sessions,
        "s-late",
        "wait, one more question",
        channel=Channel.SMS,
        minutes_ago=0,
        contact="+18175550190",
    )
    refused = await client.post(
        "/conversations/s-late/close", json={"seen": last_seen}, headers=bearer("mgarcia")
    )
    assert refused.status_code == 409, refused.text
    assert "wrote again" in refused.json()["detail"]
    now_seen = (await client.get("/conversations/s-late", headers=bearer("mgarcia"))).json()
    closed = await client.post(
        "/conversations/s-late/close",
        json={"seen": now_seen["messages"][-1]["id"]},
        headers=bearer("mgarcia"),
    )
    assert closed.status_code == 200, closed.text


async def test_a_conversion_and_a_close_at_once_are_never_both_done(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Convert-to-email took no hold on the row: a close and a conversion in two tabs both
    went through (a closed conversation converted)."""
    await patron_writes(
        sessions, "s-both", "can you email me the list", channel=Channel.SMS, contact="+18175550191"
    )
    async with sessions() as session:
        checked = actions.check

        async def closed_meanwhile(*args: Any) -> None:
            await checked(*args)
            # another tab's close commits after this action read the row
            await session.execute(
                update(Conversation)
                .where(Conversation.conversation_id == "s-both")
                .values(state="closed", closed_at=T0)
                .execution_options(synchronize_session=False)
            )

        monkeypatch.setattr(actions, "check", closed_meanwhile)
        supervisor = Actor(id="lokafor", role="supervisor", departments=("reference",))
        with pytest.raises(Conflict):
            await actions.convert_to_email(
                session=session,
                conversation_id="s-both",
                email="pat@example.edu",
                actor=supervisor,
                now=T0,
            )


async def test_a_message_on_its_way_when_the_close_was_made_reopens_it(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    """A follow-up received before a librarian pressed Close but applied after it (on its way:
    the consumer a moment behind) landed in the closed conversation, in no queue, 11 times in
    26 (a crisis once): the reopen rule compared its time with the close's. The close now
    keeps the latest patron message it accounted for, and a later one reopens it, in the
    queue and the statistics, in whichever order the close's event comes."""
    await patron_writes(
        sessions,
        "s-flight",
        "is the library open sunday",
        channel=Channel.SMS,
        minutes_ago=5,
        contact="+18175550193",
    )
    clock.advance(1)  # the close at T0 + 1 s
    closed = await client.post("/conversations/s-flight/close", json={}, headers=bearer("mgarcia"))
    assert closed.status_code == 200, closed.text
    [close] = [e for e in publisher.on(INTERACTIONS.name) if isinstance(e, ConversationClosed)]
    assert close.through == T0 - timedelta(minutes=5)
    # received at T0, a second before the close's own time, applied after it
    await patron_writes(
        sessions,
        "s-flight",
        "wait, one more question",
        channel=Channel.SMS,
        minutes_ago=0,
        contact="+18175550193",
    )
    async with sessions() as session:  # the close's own event, applied after the message
        await apply(session, event_id="close-event", data=close, assigning=Assigning())
        await session.commit()
    view = (await client.get("/conversations/s-flight", headers=bearer("mgarcia"))).json()
    assert view["state"] == "open"
    async with sessions() as session:
        stat = await session.get(DeskStat, "s-flight")
        assert stat is not None and stat.closed_at is None  # the statistics agree


async def test_a_short_follow_up_does_not_change_the_conversations_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A Spanish patron's "ok" (read as English) turned the conversation English: the survey,
    the supervisors' email and the screen reader's language with it."""

    async def decided(n: int, lang: str, *, minutes_ago: int, text: str) -> None:
        iid = f"in-s-lang-{minutes_ago}-{len(text)}"  # the message's, as patron_writes names it
        routed = RoutingDecided(
            decision_id=f"d-lang-{n}",
            interaction_id=iid,
            conversation_id="s-lang",
            channel=Channel.SMS,
            action=Action.ANSWER,
            department="reference",
            priority=Priority.NORMAL,
            overnight=False,
            lang=lang,
            policy_version="t",
            decided_at=T0 - timedelta(minutes=minutes_ago),
            follow_up=n > 1,
        )
        async with sessions() as session:
            await apply(session, event_id=f"d-lang-{n}", data=routed, assigning=Assigning())
            await session.commit()

    async def lang() -> str:
        view = (await client.get("/conversations/s-lang", headers=bearer("mgarcia"))).json()
        return str(view["lang"])

    first = "hola, ¿tienen el libro de química en la biblioteca de SE?"
    await patron_writes(sessions, "s-lang", first, channel=Channel.SMS, minutes_ago=9)
    await decided(1, "es", minutes_ago=9, text=first)
    assert await lang() == "es"
    await patron_writes(sessions, "s-lang", "ok", channel=Channel.SMS, minutes_ago=8)
    await decided(2, "en", minutes_ago=8, text="ok")
    assert await lang() == "es"  # "ok" says no language
    later = "actually can you send me the link in English please, my mom reads Spanish"
    await patron_writes(sessions, "s-lang", later, channel=Channel.SMS, minutes_ago=7)
    await decided(3, "en", minutes_ago=7, text=later)
    assert await lang() == "en"  # a follow-up that says it


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("Someone will reply {reply_by} soon.", True),
        ("Hola {nombre}, ya está.", True),
        ("Use {{ name }} here", True),  # template syntax went out word for word
        ("Dear {first name},", True),
        ("In LaTeX write \\cite{smith} after the sentence.", False),  # had been refused
        ("The set is {1, 2, 3}.", False),
    ],
)
def test_what_counts_as_a_variable_left_in_a_reply(text: str, refused: bool) -> None:
    assert bool(actions.PLACEHOLDER.search(text)) is refused


async def test_listing_closed_conversations_is_in_the_access_log(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A list of closed conversations shows patrons' words from any time (a preview, a
    subject): it had left no trace, so closed conversations could be browsed unseen (an outside
    review). The open queue, the desk's working view, is not logged at each refresh."""
    await arrive(sessions, "l-1", channel=Channel.SMS)
    await arrive(sessions, "l-2", channel=Channel.EMAIL)
    await client.post("/conversations/l-1/close", json={}, headers=bearer("mgarcia"))
    assert (await client.get("/conversations", headers=bearer("jnguyen"))).status_code == 200
    closed = await client.get("/conversations?state=closed", headers=bearer("jnguyen"))
    assert [i["conversation_id"] for i in closed.json()["items"]] == ["l-1"]
    async with sessions() as session:
        lines = (
            await session.execute(
                select(TranscriptAccess.conversation_id, TranscriptAccess.action).where(
                    TranscriptAccess.staff_id == "jnguyen"
                )
            )
        ).all()
    assert [tuple(line) for line in lines] == [("l-1", "list")]


async def test_a_refused_attempt_is_counted_and_logged_without_patron_data(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Forty attempts on conversations a tutor may not see had left no trace (an outside
    review): each is a WARNING naming staff, action and conversation ids, and counted."""
    from services.status.metrics import REFUSED

    await arrive(sessions, "r-1", channel=Channel.SMS, department="nw-circulation")
    before = REFUSED.labels(action="view")._value.get()
    with caplog.at_level("WARNING", logger="services.status.conversations.actions"):
        refused = await client.get("/conversations/r-1", headers=bearer("rpatel"))
    assert refused.status_code == 403
    assert REFUSED.labels(action="view")._value.get() == before + 1
    [record] = [r for r in caplog.records if r.getMessage() == "staff action refused"]
    assert (record.staff_id, record.act, record.conversation_id) == ("rpatel", "view", "r-1")
    assert "+1817" not in caplog.text


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_filing_and_a_withdrawal_at_once_leave_the_standing_record_shown(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Two replicas at once: Maria files while James takes his back. Each had set the record
    shown from its own snapshot, and the later commit left "no report filed" over Maria's
    record (an outside review). The second waits for the first's row."""
    await arrive(sessions, "cr-both", channel=Channel.CHAT, department="care-team", crisis=True)
    mgarcia = Actor(id="mgarcia", role="staff", departments=("reference",))
    jnguyen = Actor(id="jnguyen", role="staff", departments=("reference", "campus-ne"))
    async with sessions() as session:
        await actions.care_report_filed(
            session=session, conversation_id="cr-both", actor=jnguyen, now=T0
        )
        await session.commit()
    async with sessions() as filing, sessions() as taking_back, sessions() as watch:
        await actions.care_report_filed(
            session=filing, conversation_id="cr-both", actor=mgarcia, now=T0 + timedelta(minutes=1)
        )
        backend = await taking_back.scalar(text("SELECT pg_backend_pid()"))
        withdrawal = asyncio.create_task(
            actions.care_report_withdrawn(
                session=taking_back,
                conversation_id="cr-both",
                actor=jnguyen,
                now=T0 + timedelta(minutes=1),
            )
        )
        waiting = text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")

        async def on_the_row() -> None:  # the withdrawal waits for the row Maria's filing holds
            while await watch.scalar(waiting, {"pid": backend}) != "Lock":
                await watch.rollback()  # a transaction sees one snapshot of the activity
                await asyncio.sleep(0.02)

        await asyncio.wait_for(on_the_row(), timeout=30)
        assert not withdrawal.done()
        await filing.commit()
        await withdrawal
        await taking_back.commit()
    async with sessions() as session:
        conv = await session.get(Conversation, "cr-both")
        assert conv is not None and conv.care_report_by == "mgarcia"
