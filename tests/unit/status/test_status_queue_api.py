"""Queue routes with a fake publisher: listing, claim, transfer, close, crises, SMS to email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, Clock, FakePublisher, arrive, bearer, given, patron_writes

from services.status import queue
from services.status.console.views import sort_key
from services.status.leavers import sweep_leavers
from services.status.models import Staff
from services.status.periodic import tick
from services.status.resources import Resources
from shared.events import (
    Action,
    Channel,
    ConversationClosed,
    ConversationReleased,
    InteractionReceived,
    NotificationKind,
    NotificationRequested,
    Patron,
    Priority,
    RoutingDecided,
)
from shared.topics import DESK, INTERACTIONS, NOTIFICATIONS, ROUTING


async def test_queue_lists_in_desk_order_with_filters(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await arrive(sessions, "chat-new", channel=Channel.CHAT, minutes_ago=1)
    await arrive(sessions, "email-old", channel=Channel.EMAIL, minutes_ago=40)
    await arrive(sessions, "sms-night", channel=Channel.SMS, minutes_ago=600, overnight=True)
    await arrive(sessions, "crisis", channel=Channel.CHAT, department="care-team", crisis=True)
    await arrive(sessions, "wc", channel=Channel.CHAT, department="writing-center", minutes_ago=5)
    assert (await client.get("/queue")).status_code == 401
    everything = (await client.get("/queue", headers=bearer("lokafor"))).json()
    assert [r["conversation_id"] for r in everything["items"]] == [
        "crisis",
        "sms-night",
        "email-old",
        "wc",
        "chat-new",
    ]
    # a reference librarian sees the desk's own conversations and crises, not another
    # department's queue
    body = (await client.get("/queue", headers=bearer("mgarcia"))).json()
    assert [r["conversation_id"] for r in body["items"]] == [
        "crisis",
        "sms-night",
        "email-old",
        "chat-new",
    ]
    night = body["items"][1]
    assert {
        k: night[k] for k in ("channel", "department", "priority", "overnight", "age_s", "assignee")
    } == {
        "channel": "sms",
        "department": "reference",
        "priority": "normal",
        "overnight": True,
        "age_s": 36000,
        "assignee": None,
    }
    assert "+1817" not in str(body)  # no patron contact in the listing
    ref = (
        await client.get("/queue?department=reference&channel=sms", headers=bearer("mgarcia"))
    ).json()
    assert [r["conversation_id"] for r in ref["items"]] == ["sms-night"]


async def test_answered_conversations_go_below_every_patron_waiting(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A shift probe's new chat fell below the fold under answered tickets that were older:
    the queue now lists everyone waiting (overnight first, then by arrival) above the
    answered, and a patron who writes again moves back up. A crisis keeps its place."""
    await arrive(sessions, "overnight", channel=Channel.EMAIL, minutes_ago=600, overnight=True)
    await arrive(sessions, "morning", channel=Channel.SMS, minutes_ago=120)
    await arrive(sessions, "crisis", channel=Channel.CHAT, department="care-team", crisis=True)
    await arrive(sessions, "new-chat", channel=Channel.CHAT, minutes_ago=1)
    sup = bearer("lokafor")

    async def order() -> list[str]:
        rows = (await client.get("/queue", headers=sup)).json()["items"]
        return [r["conversation_id"] for r in rows]

    assert await order() == ["crisis", "overnight", "morning", "new-chat"]
    for cid in ("overnight", "morning", "crisis"):
        if cid == "crisis":
            acked = await client.post(f"/conversations/{cid}/acknowledge", headers=sup)
            assert acked.status_code == 200, acked.text
        sent = await client.post(
            f"/conversations/{cid}/replies", json={"text": "On it."}, headers=sup
        )
        assert sent.status_code in (200, 202), sent.text
    assert await order() == ["crisis", "new-chat", "overnight", "morning"]
    again = T0 + timedelta(minutes=1)
    await given(
        sessions,
        patron_writes("morning", "one more thing", channel=Channel.SMS, at=again, key="m-2"),
    )
    assert await order() == ["crisis", "morning", "new-chat", "overnight"]
    rows = {
        r["conversation_id"]: r for r in (await client.get("/queue", headers=sup)).json()["items"]
    }
    assert sort_key(rows["new-chat"]) < sort_key(rows["overnight"])  # the page's live order


async def test_a_crisis_nobody_has_acknowledged_comes_before_an_acknowledged_one(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """An acknowledged crisis from the morning sat above one that had just arrived and that
    nobody had acknowledged (the crisis band was ordered by age alone)."""
    await arrive(sessions, "morning", channel=Channel.CHAT, crisis=True, minutes_ago=240)
    await arrive(sessions, "earlier", channel=Channel.SMS, minutes_ago=300)
    await arrive(sessions, "just-now", channel=Channel.SMS, crisis=True)
    await arrive(sessions, "old-question", channel=Channel.EMAIL, minutes_ago=600)

    async def order() -> list[str]:
        body = (await client.get("/queue", headers=bearer("mgarcia"))).json()
        return [r["conversation_id"] for r in body["items"]]

    assert await order() == ["morning", "just-now", "old-question", "earlier"]
    acked = await client.post("/conversations/morning/acknowledge", headers=bearer("mgarcia"))
    assert acked.status_code == 200, acked.text
    assert await order() == ["just-now", "morning", "old-question", "earlier"]
    page = (await client.get("/queue", headers=bearer("mgarcia"))).json()["items"]
    keys = [sort_key(row) for row in page]  # the order the console inserts live rows by
    assert keys == sorted(keys)


async def test_claim_transfer_close(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    await arrive(sessions, "c-chat", channel=Channel.CHAT, minutes_ago=3)
    await arrive(sessions, "c-sms", channel=Channel.SMS, minutes_ago=2)
    claimed = await client.post("/queue/c-chat/claim", headers=bearer("mgarcia"))
    assert claimed.json()["assignee"] == "mgarcia"
    taken = await client.post("/queue/c-chat/claim", headers=bearer("jnguyen"))
    assert taken.status_code == 403
    assert taken.headers["content-type"].startswith("application/problem+json")
    moved = await client.post(
        "/queue/c-chat/transfer",
        headers=bearer("mgarcia"),
        json={"department": "writing-center", "note": "Someone from the Writing Center will join."},
    )
    assert moved.status_code == 200
    [decision] = publisher.on(ROUTING.name)
    assert isinstance(decision, RoutingDecided)
    assert (decision.action, decision.department, decision.decided_by) == (
        Action.TRANSFER,
        "writing-center",
        "mgarcia",
    )
    [handoff] = publisher.on(NOTIFICATIONS.name)
    assert isinstance(handoff, NotificationRequested)
    assert (handoff.kind, handoff.recipient, handoff.channel) == (
        NotificationKind.HANDOFF,
        "c-chat",
        Channel.CHAT,
    )
    bad = await client.post(
        "/queue/c-sms/transfer", headers=bearer("mgarcia"), json={"department": "narnia"}
    )
    assert bad.status_code == 422
    clock.advance(30)
    closed = await client.post("/queue/c-sms/close", headers=bearer("jnguyen"))
    assert closed.json()["state"] == "closed"
    [event] = publisher.on(INTERACTIONS.name)
    assert isinstance(event, ConversationClosed)
    assert (event.closed_by, event.patron_contact, event.channel) == (
        "jnguyen",
        "+18175550199",
        Channel.SMS,
    )
    assert (await client.post("/queue/c-sms/close", headers=bearer("jnguyen"))).status_code == 409
    samples = REGISTRY.get_sample_value(
        "refdesk_first_response_seconds_count", {"department": "reference", "channel": "sms"}
    )
    assert samples is not None and samples >= 1


async def test_crisis_acknowledge_and_reescalation(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
    resources: Resources,
) -> None:
    await arrive(sessions, "c-1", channel=Channel.CHAT, department="care-team", crisis=True)
    await arrive(sessions, "c-2", channel=Channel.SMS, department="care-team", crisis=True)
    await client.post("/shift/login", headers=bearer("lokafor"))
    ack = await client.post("/queue/c-1/acknowledge", headers=bearer("mgarcia"))
    assert ack.json()["acknowledged"] is True
    await arrive(sessions, "plain", channel=Channel.CHAT)
    assert (
        await client.post("/queue/plain/acknowledge", headers=bearer("mgarcia"))
    ).status_code == 409
    clock.advance(resources.settings.crisis_ack_timeout_s + 1)
    await client.post("/shift/heartbeat", headers=bearer("lokafor"))  # still Online
    await tick(resources)
    alerts = [n for n in publisher.on(NOTIFICATIONS.name) if isinstance(n, NotificationRequested)]
    assert [(a.kind, a.conversation_id, a.recipient) for a in alerts] == [
        (NotificationKind.CRISIS_REESCALATION, "c-2", "linda.okafor@example.edu")
    ]
    await tick(resources)
    assert len(publisher.on(NOTIFICATIONS.name)) == 1  # once a round
    clock.advance(resources.settings.crisis_ack_timeout_s)
    await client.post("/shift/heartbeat", headers=bearer("lokafor"))
    await tick(resources)  # the next round, while nobody has acknowledged it
    assert len(publisher.on(NOTIFICATIONS.name)) == 2
    assert REGISTRY.get_sample_value("refdesk_crises_unacknowledged") == 1


async def test_convert_sms_to_email_needs_a_supervisor_and_an_address(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await arrive(sessions, "sms-1", channel=Channel.SMS)
    url = "/queue/sms-1/convert-to-email"
    assert (
        await client.post(url, json={"email": "p@example.edu"}, headers=bearer("mgarcia"))
    ).status_code == 403
    assert (await client.post(url, json={}, headers=bearer("lokafor"))).status_code == 422
    done = await client.post(url, json={"email": "Pat@Example.edu"}, headers=bearer("lokafor"))
    assert (done.json()["channel"], done.json()["converted_from"]) == ("email", "sms")
    again = await client.post(url, json={"email": "p@example.edu"}, headers=bearer("lokafor"))
    assert again.status_code == 409


async def test_gauges_after_a_tick(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    resources: Resources,
) -> None:
    await arrive(sessions, "g-1", channel=Channel.SMS, minutes_ago=10, overnight=True)
    await client.post("/shift/login", headers=bearer("tbrooks"))
    await tick(resources)
    get = REGISTRY.get_sample_value
    assert (
        get("refdesk_queue_open_conversations", {"department": "reference", "channel": "sms"}) == 1
    )
    assert get("refdesk_queue_oldest_waiting_age_seconds", {"department": "reference"}) == 600
    assert get("refdesk_overnight_tickets_waiting") == 1
    assert get("refdesk_staff", {"department": "nw-circulation", "status": "Online"}) == 1
    claimed = await client.post("/queue/g-1/claim", headers=bearer("lokafor"))
    assert claimed.status_code == 200  # staff's first action: a first-response time
    text = (await client.get("/metrics")).text
    assert 'refdesk_first_response_seconds_bucket{channel="sms",department="reference"' in text


async def test_a_message_the_router_has_not_decided_yet_is_shown_only_to_those_who_see_crises(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """With the router paused, an outside probe's crisis text was listed, and opened with the
    patron's number, by Writing Center and NW Circulation staff."""
    text = InteractionReceived(
        interaction_id="i-unrouted",
        conversation_id="unrouted",
        channel=Channel.SMS,
        provider="test",
        provider_message_id="unrouted",
        patron=Patron(contact="+18175550123"),
        text="I want to end my life tonight",
        received_at=T0,
    )
    await given(sessions, text)
    for staff, sees in (("mgarcia", True), ("jnguyen", True), ("rpatel", False), ("lokafor", True)):
        listed = (await client.get("/conversations", headers=bearer(staff))).json()["items"]
        assert ("unrouted" in [r["conversation_id"] for r in listed]) is sees, staff
        opened = await client.get("/conversations/unrouted", headers=bearer(staff))
        assert opened.status_code == (200 if sees else 403), staff


async def test_a_transfer_without_a_note_sends_the_ticket_handoff_of_the_channel(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await arrive(sessions, "e-chen", channel=Channel.EMAIL)
    moved = await client.post(
        "/queue/e-chen/transfer", headers=bearer("mgarcia"), json={"department": "campus-tr"}
    )
    assert moved.status_code == 200, moved.text
    [handoff] = publisher.on(NOTIFICATIONS.name)
    assert isinstance(handoff, NotificationRequested)
    assert handoff.context["handoff_text"] == (
        "I've passed your question to the Trinity River Campus Library. "
        "A librarian there will reply by email as soon as they can."
    )


async def test_a_crisis_transferred_once_acknowledged_gets_no_prepared_handoff(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """An acknowledged crisis moved on to another department: the patron, who had just written
    of taking pills, was sent "Someone from the Writing Center will reply in this chat to help
    with your citations" (an outside patron-safety review). Only the librarian's own words go."""
    for cid in ("crisis-quiet", "crisis-told"):
        await arrive(sessions, cid, channel=Channel.CHAT, department="care-team", crisis=True)
        ack = await client.post(f"/queue/{cid}/acknowledge", headers=bearer("lokafor"))
        assert ack.status_code == 200, ack.text
    quiet = await client.post(
        "/queue/crisis-quiet/transfer",
        headers=bearer("lokafor"),
        json={"department": "writing-center"},
    )
    assert quiet.status_code == 200, quiet.text
    assert [n for n in publisher.on(NOTIFICATIONS.name) if n.kind is NotificationKind.HANDOFF] == []
    words = "Thank you for talking with me. A tutor will help with your paper when you are ready."
    told = await client.post(
        "/queue/crisis-told/transfer",
        headers=bearer("lokafor"),
        json={"department": "writing-center", "note": words},
    )
    assert told.status_code == 200, told.text
    [handoff] = [n for n in publisher.on(NOTIFICATIONS.name) if n.kind is NotificationKind.HANDOFF]
    assert handoff.context["handoff_text"] == words


async def test_a_writing_center_tutor_keeps_a_chat_the_router_escalated_and_may_answer_it(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A patron in a Writing Center chat writes something the router escalates: the tutor who
    has the chat lists it, acknowledges the crisis and answers; another tutor does not see it."""
    await arrive(sessions, "wc-chat", channel=Channel.CHAT, department="writing-center")
    claimed = await client.post("/conversations/wc-chat/claim", headers=bearer("rpatel"))
    assert claimed.status_code == 200
    crisis = RoutingDecided(
        decision_id="r-wc-chat-2",
        interaction_id="i-wc-chat-2",
        conversation_id="wc-chat",
        channel=Channel.CHAT,
        department="care-team",
        policy_version="t",
        action=Action.ESCALATE_CRISIS,
        priority=Priority.URGENT,
        overnight=False,
        follow_up=True,
        decided_at=T0 + timedelta(minutes=3),
    )
    await given(sessions, crisis)
    mine = (await client.get("/conversations?mine=true", headers=bearer("rpatel"))).json()
    [row] = [r for r in mine["items"] if r["conversation_id"] == "wc-chat"]
    assert (row["department"], row["crisis"], row["assignee"]) == ("care-team", True, "rpatel")
    reply = {"text": "I'm here with you. Can you tell me where you are right now?"}
    gated = await client.post(
        "/conversations/wc-chat/replies", json=reply, headers=bearer("rpatel")
    )
    assert gated.status_code == 409  # acknowledged first, as every crisis
    ack = await client.post("/conversations/wc-chat/acknowledge", headers=bearer("rpatel"))
    assert ack.status_code == 200
    sent = await client.post("/conversations/wc-chat/replies", json=reply, headers=bearer("rpatel"))
    assert sent.status_code == 202
    # nor may they move it out of the CARE Team's sight (an outside probe did, to the Writing
    # Center, where every tutor's console then showed it)
    back = await client.post(
        "/conversations/wc-chat/transfer",
        json={"department": "writing-center"},
        headers=bearer("rpatel"),
    )
    assert back.status_code == 403
    # another department's librarian, not in the chat, still sees no crisis of the CARE Team's
    assert (
        await client.get("/conversations/wc-chat", headers=bearer("tbrooks"))
    ).status_code == 403


def _escalated(cid: str) -> RoutingDecided:
    """The router's decision on a later message of `cid`'s chat: a crisis, to the CARE Team."""
    return RoutingDecided(
        decision_id=f"r-{cid}-2",
        interaction_id=f"i-{cid}-2",
        conversation_id=cid,
        channel=Channel.CHAT,
        department="care-team",
        overnight=False,
        policy_version="t",
        action=Action.ESCALATE_CRISIS,
        priority=Priority.URGENT,
        decided_at=T0,
    )


def _ticket(cid: str, *, fallback: str | None, decided_by: str = "router") -> RoutingDecided:
    """The router's decision on `cid`'s renewal: a live transfer to NW Circulation, made a
    ticket there (`fallback`) when nobody in it was Online."""
    return RoutingDecided(
        decision_id=f"r2-{cid}-{decided_by}",
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=Channel.CHAT,
        department="nw-circulation",
        policy_version="t",
        action=Action.TRANSFER,
        priority=Priority.NORMAL,
        overnight=False,
        decided_at=T0,
        fallback=fallback,
        decided_by=decided_by,
    )


async def test_a_ticket_nobody_online_could_take_reaches_the_desk_until_claimed(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    """A shift probe's renewal ("due today at 5") went to NW Circulation as a ticket with
    nobody there, and no librarian Online at the desk could see it: only supervisors did.
    Now the desk's staff see such a ticket, marked, until someone claims it; a ticket made
    while NW Circulation was staffed stays theirs alone, and so does a staff transfer."""
    renewal = "can I renew my laptop loan? its due today at 5"
    await given(
        sessions,
        patron_writes("due-today", renewal, channel=Channel.CHAT, contact="chat-visitor-7"),
        _ticket("due-today", fallback="ticket: nobody Online in nw-circulation"),
    )
    await arrive(sessions, "staffed", channel=Channel.CHAT, department="nw-circulation")

    async def ids(staff: str) -> set[str]:
        rows = (await client.get("/conversations", headers=bearer(staff))).json()["items"]
        return {row["conversation_id"] for row in rows}

    assert "due-today" in await ids("mgarcia") and "due-today" in await ids("jnguyen")
    assert "staffed" not in await ids("mgarcia")  # NW Circulation's own, as before
    assert {"due-today", "staffed"} <= await ids("tbrooks")  # still theirs
    assert "due-today" not in await ids("rpatel")  # the desk's, not every department's
    [row] = [
        r
        for r in (await client.get("/conversations", headers=bearer("mgarcia"))).json()["items"]
        if r["conversation_id"] == "due-today"
    ]
    assert row["unstaffed"] is True and row["department"] == "nw-circulation"

    claimed = await client.post("/conversations/due-today/claim", headers=bearer("mgarcia"))
    assert claimed.status_code == 200, claimed.text
    assert "due-today" in await ids("mgarcia")  # hers now
    assert "due-today" not in await ids("jnguyen")  # no longer the desk's to pick up
    assert "due-today" in await ids("tbrooks")
    # a colleague's pane that was showing it says who took it, not only whose it is
    gone = await client.get("/conversations/due-today", headers=bearer("jnguyen"))
    assert gone.status_code == 403
    assert gone.json()["detail"].startswith("Maria Garcia took this conversation"), gone.text
    pane = await client.get(
        "/dashboard/fragments/conversation/due-today",
        headers={**bearer("jnguyen"), "Accept": "text/html"},
    )
    assert pane.status_code == 403 and "Maria Garcia took this conversation" in pane.text
    assert "belongs to a department you do not staff" not in pane.text

    # a colleague's deliberate transfer to NW Circulation is theirs alone
    await given(sessions, _ticket("staffed", fallback=None, decided_by="lokafor"))
    assert "staffed" not in await ids("jnguyen")


async def test_a_claimed_conversation_is_given_back_by_its_librarian_or_a_supervisor(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """A supervisor's claim by mistake of the Writing Center tutor's chat left the patron, who
    was promised a tutor, waiting: nobody could give it back. At a shift's end a librarian's
    claimed tickets were nobody else's to answer. Now the librarian (or a supervisor) gives a
    conversation back to the queue; anyone who may see it may claim it again."""
    await arrive(sessions, "wc-chat", channel=Channel.CHAT, department="writing-center")
    taken = await client.post("/conversations/wc-chat/claim", headers=bearer("dkim"))
    assert taken.json()["assignee"] == "dkim"
    refused = await client.post("/conversations/wc-chat/claim", headers=bearer("rpatel"))
    assert refused.status_code == 403
    assert (
        await client.post("/conversations/wc-chat/release", headers=bearer("rpatel"))
    ).status_code == 403  # not theirs to give back
    back = await client.post("/conversations/wc-chat/release", headers=bearer("dkim"))
    assert back.status_code == 200, back.text
    assert back.json()["assignee"] is None
    [event] = [e for e in publisher.on(DESK.name) if isinstance(e, ConversationReleased)]
    assert (event.staff_id, event.assignee) == ("dkim", "dkim")
    again = await client.post("/conversations/wc-chat/release", headers=bearer("dkim"))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    mine = await client.post("/conversations/wc-chat/claim", headers=bearer("rpatel"))
    assert mine.json()["assignee"] == "rpatel"
    # a supervisor gives back a colleague's (the shift ended with it claimed)
    by_boss = await client.post("/queue/wc-chat/release", headers=bearer("lokafor"))
    assert by_boss.status_code == 200 and by_boss.json()["assignee"] is None
    view = (await client.get("/conversations/wc-chat", headers=bearer("lokafor"))).json()
    lines = [m["text"] for m in view["messages"] if m["direction"] == "event"]
    assert "Given back to the queue by Linda Okafor" in lines
    # the event, consumed again (another replica's, or a replay), changes nothing more; a
    # release of a claim that came after it does not undo the claim
    await given(sessions, event)
    claimed = await client.post("/conversations/wc-chat/claim", headers=bearer("rpatel"))
    assert claimed.json()["assignee"] == "rpatel"
    await given(sessions, event)
    row = (await client.get("/conversations/wc-chat", headers=bearer("rpatel"))).json()
    assert row["assignee"] == "rpatel"


async def test_who_may_not_see_a_conversation_learns_nothing_of_it_from_an_action(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A security probe, as Writing Center staff, read from other departments' conversations
    whether they were claimed (409 "nobody has claimed"), closed (409) and their channel (a
    macro's 422): every action now answers 403 to who may not see the conversation."""
    await arrive(sessions, "ref-sms", channel=Channel.SMS, department="nw-circulation")
    await arrive(sessions, "ref-closed", channel=Channel.CHAT, department="nw-circulation")
    closed = await client.post("/conversations/ref-closed/close", json={}, headers=bearer("dkim"))
    assert closed.status_code == 200, closed.text
    tutor = bearer("rpatel")
    for path, body in (
        ("/conversations/ref-sms/release", None),
        ("/queue/ref-sms/release", None),
        ("/conversations/ref-sms/replies", {"macro": "closing"}),
        ("/conversations/ref-closed/claim", None),
        ("/conversations/ref-closed/notes", {"text": "x"}),
    ):
        answer = await client.post(path, json=body, headers=tutor)
        assert answer.status_code == 403, (path, answer.text)
        assert "closed" not in answer.text and "claimed" not in answer.text, path
    # who may see it still hears why not
    assert (
        await client.post("/conversations/ref-sms/release", headers=bearer("tbrooks"))
    ).status_code == 409


async def test_a_macro_filled_with_the_patrons_name_is_a_logged_read(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The greeting macro ("Hi Wanda, ...") read the patron's name and left no line in the
    access log, FERPA's record of disclosures."""
    from sqlalchemy import select

    from services.status.models import TranscriptAccess

    await arrive(sessions, "nw-chat", channel=Channel.CHAT, department="nw-circulation")
    filled = await client.get("/conversations/nw-chat/macros/closing", headers=bearer("tbrooks"))
    assert filled.status_code == 200, filled.text
    async with sessions() as session:
        logged = (await session.execute(select(TranscriptAccess))).scalars().all()
    assert [(a.staff_id, a.conversation_id, a.action) for a in logged] == [
        ("tbrooks", "nw-chat", "macro")
    ]


async def test_a_queue_longer_than_its_page_says_how_many_it_leaves_out(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], monkeypatch: Any
) -> None:
    """The console's queue stopped at 200 rows and said "202 open" for 310: answered
    conversations stay open until someone closes them, so a real desk passes a page."""
    for n in range(3):
        await arrive(sessions, f"c-{n}", channel=Channel.CHAT, minutes_ago=10 - n)
    listed = (await client.get("/conversations?limit=2", headers=bearer("mgarcia"))).json()
    assert (len(listed["items"]), listed["total"]) == (2, 3)
    listed = (await client.get("/conversations?limit=5", headers=bearer("mgarcia"))).json()
    assert (len(listed["items"]), listed["total"]) == (3, 3)
    monkeypatch.setattr(queue, "DEFAULT_LIMIT", 2)
    login = await client.post(
        "/dashboard/login", data={"staff_id": "mgarcia", "token": "dev-mgarcia-token"}
    )
    assert login.status_code == 303
    page = (await client.get("/dashboard/fragments/queue")).text
    summary = page[page.index('id="queue-summary"') :]
    summary = summary[: summary.index("</p>")]
    assert 'data-all="3"' in summary
    assert "2 of 3 open shown, most urgent first: filter or search for the rest" in summary


async def test_signing_off_gives_back_the_conversations_whose_patron_waits(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """A patron who wrote a moment before their librarian signed off stayed with an Offline
    librarian, whom nobody else may answer for (a message after the sign-off was given back)."""
    await arrive(sessions, "c-waits", channel=Channel.SMS, minutes_ago=5)
    await arrive(sessions, "c-answered", channel=Channel.SMS, minutes_ago=5)
    await client.post("/shift/login", headers=bearer("mgarcia"))
    for cid in ("c-waits", "c-answered"):
        assert (await client.post(f"/queue/{cid}/claim", headers=bearer("mgarcia"))).is_success
    replied = await client.post(
        "/conversations/c-answered/replies",
        json={"text": "Yes, until 9."},
        headers=bearer("mgarcia"),
    )
    assert replied.status_code == 202, replied.text
    off = await client.post("/shift/logout", headers=bearer("mgarcia"))
    assert off.status_code == 200 and off.json()["status"] == "Offline"
    waits = (await client.get("/conversations/c-waits", headers=bearer("lokafor"))).json()
    answered = (await client.get("/conversations/c-answered", headers=bearer("lokafor"))).json()
    assert (waits["assignee"], answered["assignee"]) == (None, "mgarcia")
    released = [e for e in publisher.on(DESK.name) if isinstance(e, ConversationReleased)]
    assert [(e.conversation_id, e.assignee) for e in released] == [("c-waits", "mgarcia")]


async def _set_offline(
    client: httpx.AsyncClient, clock: Clock, resources: Resources, how: str, answer: int
) -> str:
    """Set mgarcia Offline `how` (a supervisor's sign-off, the status menu, a lapsed
    heartbeat), the requests answered `answer`; who set her so."""
    if how == "lapse":
        clock.advance(resources.settings.heartbeat_offline_after_s + 1)
        await tick(resources)  # with the broker away its presence step fails, logged
        return "refdesk"
    if how == "supervisor":
        off = await client.post(
            "/supervisor/staff/mgarcia/force-offline", headers=bearer("lokafor")
        )
    else:
        off = await client.put(
            "/staff/mgarcia/status", json={"status": "Offline"}, headers=bearer("mgarcia")
        )
    assert off.status_code == answer, off.text
    return "lokafor" if how == "supervisor" else "mgarcia"


@pytest.mark.parametrize("how", ["supervisor", "status", "lapse"])
async def test_set_offline_any_way_gives_back_the_conversations_whose_patron_waits(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
    resources: Resources,
    how: str,
) -> None:
    """A supervisor's "Sign someone off" left a librarian's waiting patron with someone
    Offline, whom only a supervisor could answer for (an outside review): set Offline by a
    supervisor, by the status menu or by a dashboard silent too long, as by signing off."""
    await arrive(sessions, "c-waits", channel=Channel.SMS, minutes_ago=5)
    await arrive(sessions, "c-answered", channel=Channel.SMS, minutes_ago=5)
    await client.post("/shift/login", headers=bearer("mgarcia"))
    for cid in ("c-waits", "c-answered"):
        assert (await client.post(f"/queue/{cid}/claim", headers=bearer("mgarcia"))).is_success
    replied = await client.post(
        "/conversations/c-answered/replies",
        json={"text": "Yes, until 9."},
        headers=bearer("mgarcia"),
    )
    assert replied.status_code == 202, replied.text
    by = await _set_offline(client, clock, resources, how, 200)
    me = (await client.get("/staff/me", headers=bearer("mgarcia"))).json()
    assert me["status"] == "Offline"
    waits = (await client.get("/conversations/c-waits", headers=bearer("lokafor"))).json()
    answered = (await client.get("/conversations/c-answered", headers=bearer("lokafor"))).json()
    assert (waits["assignee"], answered["assignee"]) == (None, "mgarcia")
    released = [e for e in publisher.on(DESK.name) if isinstance(e, ConversationReleased)]
    assert [(e.conversation_id, e.assignee, e.staff_id) for e in released] == [
        ("c-waits", "mgarcia", by)
    ]


@pytest.mark.parametrize("how", ["supervisor", "status", "lapse"])
async def test_set_offline_with_the_broker_away_still_gives_back_and_a_crisis_too(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
    resources: Resources,
    how: str,
) -> None:
    """With the broker away the presence could not be published (503) and the give-back after
    it was never made, nor by a later sweep; an unacknowledged crisis was refused by the crisis
    gate and stayed with someone Offline (an outside review). Both go back; the crisis stays
    unacknowledged, on top of the queue."""
    await arrive(sessions, "c-waits", channel=Channel.SMS, minutes_ago=5)
    await arrive(sessions, "c-crisis", channel=Channel.CHAT, minutes_ago=5)
    await client.post("/shift/login", headers=bearer("mgarcia"))
    for cid in ("c-waits", "c-crisis"):
        assert (await client.post(f"/queue/{cid}/claim", headers=bearer("mgarcia"))).is_success
    await given(sessions, _escalated("c-crisis"))
    publisher.fail = True
    await _set_offline(client, clock, resources, how, 503)  # the presence waits for the broker
    publisher.fail = False
    for cid in ("c-waits", "c-crisis"):
        row = (await client.get(f"/conversations/{cid}", headers=bearer("lokafor"))).json()
        assert row["assignee"] is None, cid
    crisis = (await client.get("/conversations/c-crisis", headers=bearer("lokafor"))).json()
    assert (crisis["crisis"], crisis["acknowledged"]) == (True, False)


@pytest.mark.parametrize("how", ["deactivate", "patch"])
async def test_deactivating_a_librarian_gives_back_everything_they_held(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    how: str,
) -> None:
    """A librarian who left kept their claimed conversations, a waiting patron's among them:
    no colleague could answer it until the patron wrote again. Deactivation releases each,
    waiting or answered, as the admin who deactivated them."""
    await arrive(sessions, "c-waits", channel=Channel.SMS, minutes_ago=5)
    await arrive(sessions, "c-answered", channel=Channel.EMAIL, minutes_ago=5)
    await arrive(sessions, "c-other", channel=Channel.CHAT, minutes_ago=5)
    for cid in ("c-waits", "c-answered"):
        assert (await client.post(f"/queue/{cid}/claim", headers=bearer("mgarcia"))).is_success
    assert (await client.post("/queue/c-other/claim", headers=bearer("jnguyen"))).is_success
    replied = await client.post(
        "/conversations/c-answered/replies",
        json={"text": "Yes, until 9."},
        headers=bearer("mgarcia"),
    )
    assert replied.status_code == 202, replied.text
    # a patron of hers the router then escalated: the crisis stays with her, unacknowledged
    await arrive(sessions, "c-crisis", channel=Channel.CHAT, minutes_ago=5)
    assert (await client.post("/queue/c-crisis/claim", headers=bearer("mgarcia"))).is_success
    await given(sessions, _escalated("c-crisis"))
    held = (await client.get("/conversations/c-crisis", headers=bearer("lokafor"))).json()
    assert (held["crisis"], held["acknowledged"], held["assignee"]) == (True, False, "mgarcia")
    if how == "deactivate":
        gone = await client.post("/admin/staff/mgarcia/deactivate", headers=bearer("dkim"))
    else:
        gone = await client.patch(
            "/admin/staff/mgarcia", json={"active": False}, headers=bearer("dkim")
        )
    assert gone.status_code == 200 and gone.json()["active"] is False, gone.text
    for cid in ("c-waits", "c-answered", "c-crisis"):
        row = (await client.get(f"/conversations/{cid}", headers=bearer("lokafor"))).json()
        assert row["assignee"] is None, cid
    # the crisis, back in the queue, is anyone's in a crisis department to acknowledge and take
    ack = await client.post("/conversations/c-crisis/acknowledge", headers=bearer("jnguyen"))
    assert ack.status_code == 200, ack.text
    assert (await client.post("/queue/c-crisis/claim", headers=bearer("jnguyen"))).is_success
    other = (await client.get("/conversations/c-other", headers=bearer("lokafor"))).json()
    assert other["assignee"] == "jnguyen"
    released = [e for e in publisher.on(DESK.name) if isinstance(e, ConversationReleased)]
    assert sorted((e.conversation_id, e.assignee, e.staff_id) for e in released) == [
        ("c-answered", "mgarcia", "dkim"),
        ("c-crisis", "mgarcia", "dkim"),
        ("c-waits", "mgarcia", "dkim"),
    ]


async def test_a_conversation_a_leaver_still_holds_is_given_back_by_the_sweep(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    resources: Resources,
) -> None:
    """A claim that read its librarian active as the deactivation committed kept the
    conversation with someone who had left (an outside review, on SQLite): the sweep gives it
    back within a minute."""
    await arrive(sessions, "c-raced", channel=Channel.SMS, minutes_ago=5)
    assert (await client.post("/queue/c-raced/claim", headers=bearer("mgarcia"))).is_success
    async with sessions() as session:  # deactivated after the claim read her active
        staff = await session.get(Staff, "mgarcia")
        assert staff is not None
        staff.active = False
        await session.commit()
    await sweep_leavers(resources, T0)
    row = (await client.get("/conversations/c-raced", headers=bearer("lokafor"))).json()
    assert row["assignee"] is None
    released = [e for e in publisher.on(DESK.name) if isinstance(e, ConversationReleased)]
    assert [(e.conversation_id, e.assignee, e.staff_id) for e in released] == [
        ("c-raced", "mgarcia", "refdesk")
    ]


async def test_signing_out_of_the_console_gives_them_back_too(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await arrive(sessions, "c-left", channel=Channel.CHAT, minutes_ago=5)
    signed_in = await client.post(
        "/dashboard/login", data={"staff_id": "mgarcia", "token": "dev-mgarcia-token"}
    )
    assert signed_in.status_code == 303
    assert (await client.post("/queue/c-left/claim", headers=bearer("mgarcia"))).is_success
    assert (await client.post("/dashboard/logout")).status_code == 303
    left = (await client.get("/conversations/c-left", headers=bearer("lokafor"))).json()
    assert left["assignee"] is None
