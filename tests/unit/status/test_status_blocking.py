"""Blocking a sender at the desk: a librarian blocks the patron of their conversation, the
block is published for ingest, recorded once, in the access log and on the transcript; a close
sends the blocked sender no survey; their later messages stay off the queue unless the router
escalates or flags them; a supervisor unblocks (from the conversation or the list)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, Clock, FakePublisher, arrive, bearer, given, patron_writes

from services.status.auth import Actor
from services.status.conversations import blocking
from services.status.models import BlockedContact, Conversation, TranscriptAccess
from shared.events import (
    Action,
    Channel,
    ContactBlocked,
    ContactUnblocked,
    ConversationClosed,
    Priority,
    RoutingDecided,
)
from shared.topics import DESK, INTERACTIONS

NUMBER = "+18175550199"  # status_fakes' SMS patron
REASON = "Threatening messages to staff, three nights running"


async def test_a_librarian_blocks_the_patron_and_the_block_is_published_and_logged(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await arrive(sessions, "b-1", channel=Channel.SMS, department="nw-circulation")
    view = (await client.get("/conversations/b-1", headers=bearer("tbrooks"))).json()
    assert view["permitted"]["block"] is True and view["permitted"]["unblock"] is False
    assert view["blocked"] is None
    # writing center staff do not see an NW Circulation conversation
    hidden = await client.post(
        "/conversations/b-1/block", json={"reason": REASON}, headers=bearer("rpatel")
    )
    assert hidden.status_code == 403
    unsaid = await client.post(
        "/conversations/b-1/block", json={"reason": "   "}, headers=bearer("tbrooks")
    )
    assert unsaid.status_code == 422
    assert unsaid.headers["content-type"].startswith("application/problem+json")

    done = await client.post(
        "/conversations/b-1/block", json={"reason": REASON}, headers=bearer("tbrooks")
    )
    assert done.status_code == 200, done.text
    assert done.json()["blocked"]["blocked_by"] == "tbrooks"
    assert done.json()["blocked"]["reason"] == REASON
    events = [e for e in publisher.on(DESK.name) if isinstance(e, ContactBlocked)]
    assert [(e.contact, e.conversation_id, e.staff_id, e.reason) for e in events] == [
        (NUMBER, "b-1", "tbrooks", REASON)
    ]
    # a second press blocks nothing new and publishes nothing
    again = await client.post(
        "/conversations/b-1/block", json={"reason": "again"}, headers=bearer("lokafor")
    )
    assert again.status_code == 200 and again.json()["blocked"]["blocked_by"] == "tbrooks"
    assert len([e for e in publisher.on(DESK.name) if isinstance(e, ContactBlocked)]) == 1
    view = (await client.get("/conversations/b-1", headers=bearer("lokafor"))).json()
    texts = [m["text"] for m in view["messages"] if m["direction"] == "event"]
    assert f"Sender blocked (“{REASON}”) by Tasha Brooks" in texts
    async with sessions() as session:
        logged = (
            await session.scalars(
                select(TranscriptAccess).where(TranscriptAccess.action.in_(["block", "unblock"]))
            )
        ).all()
    # the reason may name the patron: kept with the block and the transcript, which retention
    # removes, never in the access log, which it does not
    assert [(e.staff_id, e.conversation_id, e.detail) for e in logged] == [("tbrooks", "b-1", None)]


async def test_a_chat_without_a_contact_cannot_be_blocked_and_a_crisis_is_acknowledged_first(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await arrive(sessions, "b-chat", channel=Channel.CHAT, contact="")
    refused = await client.post(
        "/conversations/b-chat/block", json={"reason": REASON}, headers=bearer("mgarcia")
    )
    assert refused.status_code == 409 and "no phone number or email" in refused.json()["detail"]
    await arrive(sessions, "b-crisis", channel=Channel.SMS, department="care-team", crisis=True)
    gated = await client.post(
        "/conversations/b-crisis/block", json={"reason": REASON}, headers=bearer("mgarcia")
    )
    assert gated.status_code == 409 and "acknowledge" in gated.json()["detail"]


async def test_closing_a_blocked_senders_conversation_sends_no_survey(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await arrive(sessions, "b-2", channel=Channel.EMAIL)
    sent = await client.post(
        "/conversations/b-2/replies", json={"text": "Here you go."}, headers=bearer("mgarcia")
    )
    assert sent.status_code == 202
    blocked = await client.post(
        "/conversations/b-2/block", json={"reason": REASON}, headers=bearer("mgarcia")
    )
    assert blocked.status_code == 200
    closed = await client.post("/conversations/b-2/close", json={}, headers=bearer("mgarcia"))
    assert closed.status_code == 200, closed.text
    close = [e for e in publisher.on(INTERACTIONS.name) if isinstance(e, ConversationClosed)]
    assert [(e.conversation_id, e.survey) for e in close] == [("b-2", False)]
    # the same conversation's patron unblocked: the next close surveys again (a control)
    await arrive(sessions, "b-3", channel=Channel.EMAIL)
    await client.post(
        "/conversations/b-3/replies", json={"text": "Here you go."}, headers=bearer("mgarcia")
    )
    lifted = await client.post("/conversations/b-3/unblock", headers=bearer("lokafor"))
    assert lifted.status_code == 200, lifted.text  # the same address as b-2's patron
    await client.post("/conversations/b-3/close", json={}, headers=bearer("mgarcia"))
    close = [e for e in publisher.on(INTERACTIONS.name) if isinstance(e, ConversationClosed)]
    assert [(e.conversation_id, e.survey) for e in close][-1] == ("b-3", True)


async def test_only_a_supervisor_unblocks_and_every_replica_reads_the_same_list(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    await arrive(sessions, "b-4", channel=Channel.SMS)
    await client.post(
        "/conversations/b-4/block", json={"reason": REASON}, headers=bearer("mgarcia")
    )
    refused = await client.post("/conversations/b-4/unblock", headers=bearer("mgarcia"))
    assert refused.status_code == 403 and "supervisor" in refused.json()["detail"]
    clock.advance(60)
    lifted = await client.post("/conversations/b-4/unblock", headers=bearer("lokafor"))
    assert lifted.status_code == 200 and lifted.json()["blocked"] is None
    unblocks = [e for e in publisher.on(DESK.name) if isinstance(e, ContactUnblocked)]
    assert [(e.contact, e.staff_id) for e in unblocks] == [(NUMBER, "lokafor")]
    twice = await client.post("/conversations/b-4/unblock", headers=bearer("lokafor"))
    assert twice.status_code == 409
    # the events as another replica (or a rebuild) reads them: one block, then lifted, each
    # one line of the conversation's timeline
    await arrive(sessions, "b-5", channel=Channel.SMS, contact="+18175550123")
    other = ContactBlocked(
        contact="+18175550123", conversation_id="b-5", staff_id="jnguyen", reason="spam", at=T0
    )
    await given(sessions, other, other)
    async with sessions() as session:
        rows = await blocking.listing(session)
        assert [(r.contact, r.unblocked_by) for r in rows] == [
            ("+18175550123", None),
            (NUMBER, "lokafor"),
        ]
    await given(
        sessions,
        ContactUnblocked(
            contact="+18175550123",
            conversation_id="b-5",
            staff_id="lokafor",
            at=T0 + timedelta(minutes=5),
        ),
    )
    async with sessions() as session:
        assert await blocking.in_force(session, ["+18175550123", NUMBER]) is None
    view = (await client.get("/conversations/b-5", headers=bearer("lokafor"))).json()
    texts = [m["text"] for m in view["messages"] if m["direction"] == "event"]
    assert texts.count("Sender blocked (“spam”) by James Nguyen") == 1
    assert texts.count("Sender unblocked by Linda Okafor") == 1


async def test_a_blocked_senders_messages_stay_off_the_queue_unless_the_router_flags_them(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A blocked harasser texting again had reopened the closed conversation and put it back
    at the top of the queue; a message the router flags for safety review still reopens it."""
    await arrive(sessions, "b-6", channel=Channel.SMS)
    answered = await client.post(
        "/conversations/b-6/replies",
        json={"text": "We can't help with that."},
        headers=bearer("mgarcia"),
    )
    assert answered.status_code == 202
    await client.post(
        "/conversations/b-6/block", json={"reason": REASON}, headers=bearer("mgarcia")
    )
    assert (
        await client.post("/conversations/b-6/close", json={}, headers=bearer("mgarcia"))
    ).is_success
    later = T0 + timedelta(minutes=30)
    spam = patron_writes("b-6", "answer me now", channel=Channel.SMS, at=later, key="b-6-2")
    await given(sessions, spam.model_copy(update={"blocked": True}))
    async with sessions() as session:
        conv = await session.get(Conversation, "b-6")
        assert conv is not None and conv.state == "closed" and conv.waiting_since is None
    view = (await client.get("/conversations/b-6", headers=bearer("mgarcia"))).json()
    assert "answer me now" in [m["text"] for m in view["messages"]]  # kept, for the record
    threat = patron_writes(
        "b-6", "i'm outside waiting for you", channel=Channel.SMS, at=later, key="b-6-3"
    )
    flagged = RoutingDecided(
        decision_id="r-b-6-3",
        interaction_id="i-b-6-3",
        conversation_id="b-6",
        channel=Channel.SMS,
        department="reference",
        policy_version="t",
        overnight=False,
        action=Action.ANSWER,
        priority=Priority.NORMAL,
        safety_review=True,
        decided_at=later + timedelta(seconds=1),
    )
    # the decision before its line: the desk's blocklist says whose it is
    await given(sessions, flagged, threat.model_copy(update={"blocked": True}))
    async with sessions() as session:
        conv = await session.get(Conversation, "b-6")
        assert conv is not None and conv.state == "open" and conv.safety_review
        assert conv.waiting_since is not None


async def test_lifted_blocks_are_purged_with_the_transcripts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    actor = Actor(id="lokafor", role="supervisor", departments=("reference",))
    async with sessions() as session:
        for contact in ("+18175550101", "+18175550102"):
            await blocking.record_block(
                session,
                ContactBlocked(contact=contact, staff_id="mgarcia", reason="x", at=T0),
            )
        await session.flush()
        first = (await blocking.listing(session))[-1]
        await blocking.unblock_entry(session=session, entry_id=first.id, actor=actor, now=T0)
        kept = timedelta(days=30)
        assert await blocking.purge_lifted(session, now=T0 + timedelta(days=29), kept=kept) == 0
        assert await blocking.purge_lifted(session, now=T0 + timedelta(days=31), kept=kept) == 1
        left = (await session.scalars(select(BlockedContact.unblocked_at))).all()
        assert left == [None]  # the block still in force stays


async def test_a_sender_the_mail_system_could_not_verify_is_not_blocked(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Its From may be forged: a forger could have a student's own address blocked, and their
    later email hidden (an outside review)."""
    await arrive(sessions, "b-forged", channel=Channel.EMAIL, contact="victim@my.tccd.edu")
    async with sessions() as session:
        conv = await session.get(Conversation, "b-forged")
        assert conv is not None
        conv.sender_unverified = True
        await session.commit()
    refused = await client.post(
        "/conversations/b-forged/block", json={"reason": REASON}, headers=bearer("mgarcia")
    )
    assert refused.status_code == 409 and "forged" in refused.json()["detail"]
    async with sessions() as session:
        assert await blocking.in_force(session, ["victim@my.tccd.edu"]) is None


async def test_a_block_of_an_address_covers_its_plus_tags_as_ingest_reads_them(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """Ingest blocks eve.park+x@ under a block of eve.park@: the desk's close sends no survey
    there either, and a supervisor lifts the block from either conversation."""
    await arrive(sessions, "b-eve", channel=Channel.EMAIL, contact="eve.park@my.tccd.edu")
    await arrive(sessions, "b-eve-x", channel=Channel.EMAIL, contact="eve.park+x@my.tccd.edu")
    await client.post(
        "/conversations/b-eve/block", json={"reason": REASON}, headers=bearer("mgarcia")
    )
    await client.post(
        "/conversations/b-eve-x/replies", json={"text": "Here it is."}, headers=bearer("mgarcia")
    )
    view = (await client.get("/conversations/b-eve-x", headers=bearer("mgarcia"))).json()
    assert view["blocked"]["conversation_id"] == "b-eve"
    await client.post("/conversations/b-eve-x/close", json={}, headers=bearer("mgarcia"))
    close = [e for e in publisher.on(INTERACTIONS.name) if isinstance(e, ConversationClosed)]
    assert [(e.conversation_id, e.survey) for e in close] == [("b-eve-x", False)]
    lifted = await client.post("/conversations/b-eve-x/unblock", headers=bearer("lokafor"))
    assert lifted.status_code == 200
    async with sessions() as session:
        assert await blocking.in_force(session, ["eve.park@my.tccd.edu"]) is None
