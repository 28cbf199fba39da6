"""Live updates: a change applied on one replica reaches the event streams of every replica,
only for staff who may see the conversation; two real HTTP servers share one database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import console_scenes as scene
import httpx
import pytest
import uvicorn
from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import sessionmaker
from status_fakes import Clock, FakePublisher, arrive, bearer

from services.status.app import create_app
from services.status.auth import Actor
from services.status.console import live
from services.status.console.live import Change, LiveFeed, RenderedRow, _stream
from services.status.console.pages import live_rows
from services.status.conversations import transcript
from services.status.conversations.transcript import nudge_after_commit
from services.status.handlers import Assigning, apply
from services.status.models import Conversation, DeskChange
from services.status.resources import Resources
from services.status.settings import StatusSettings
from shared.db import session_factory
from shared.events import Channel
from tests.servers import QuietServer


async def test_two_feeds_on_one_database_both_see_a_change_and_filter_by_department(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    one, two = LiveFeed(sessions), LiveFeed(sessions)
    await one.start_at_head()
    await two.start_at_head()
    desk = Actor(id="mgarcia", role="staff", departments=("reference",))
    writing = Actor(id="rpatel", role="staff", departments=("writing-center",))
    with one.subscribe(desk) as a, two.subscribe(desk) as b, two.subscribe(writing) as w:
        await arrive(sessions, "live-1", channel=Channel.SMS)
        await arrive(sessions, "live-wc", channel=Channel.CHAT, department="writing-center")
        one.publish(await one.poll())
        two.publish(await two.poll())
        got_a = [(c.conversation_id, c.what) for c in _drain(a.queue)]
        got_b = [(c.conversation_id, c.what) for c in _drain(b.queue)]
        got_w = [(c.conversation_id, c.what) for c in _drain(w.queue)]
    assert got_a == got_b
    assert ("live-1", "routed") in got_a
    # routed to the Writing Center: its staff are told, the desk is not (an unrouted message
    # belongs to the desk until then)
    assert ("live-wc", "routed") not in got_a
    assert ("live-wc", "routed") in got_w
    assert ("live-1", "routed") in got_w  # the desk's own conversations reach every staff member
    # nothing twice on the next poll
    assert await one.poll() == []


async def test_a_change_committed_after_a_higher_id_was_read_is_still_handed_out(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """PostgreSQL may commit id 1002 after 1003 was read: the next poll asks for the gap."""
    feed = LiveFeed(sessions)
    await feed.start_at_head()
    desk = Actor(id="mgarcia", role="staff", departments=("reference",))

    async def change(row_id: int) -> None:
        async with sessions() as session:
            session.add(
                DeskChange(
                    id=row_id, conversation_id=f"gap-{row_id}", what="message", at=datetime.now(UTC)
                )
            )
            await session.commit()

    with feed.subscribe(desk):
        await change(1001)
        await change(1003)
        assert [c.id for c in await feed.poll()] == [1001, 1003]
        await change(1002)
        assert [c.id for c in await feed.poll()] == [1002]
        assert await feed.poll() == []


async def test_a_nudge_reads_this_replicas_commits_at_once(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = LiveFeed(sessions, interval_s=3600)  # without the nudge, the next read is an hour off
    polls: list[int] = []
    read = feed.poll

    async def counted() -> list[Change]:
        changes = await read()
        polls.append(len(changes))
        return changes

    monkeypatch.setattr(feed, "poll", counted)
    desk = Actor(id="mgarcia", role="staff", departments=("reference",))
    await arrive(sessions, "before-1", channel=Channel.SMS)
    with feed.subscribe(desk) as sub:
        running = asyncio.create_task(feed.run())
        try:
            async with asyncio.timeout(10):
                while not polls:  # until run() has read once and waits
                    await asyncio.sleep(0.01)
            await arrive(sessions, "nudged-1", channel=Channel.SMS)
            feed.nudge()
            change = await asyncio.wait_for(sub.queue.get(), timeout=10)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(running, timeout=10)
    assert polls[0] == 0  # what arrived before the feed started is not handed out
    assert len(polls) == 2  # the nudged read, not the hourly one
    assert change is not None
    assert change.conversation_id == "nudged-1"


async def test_a_cancel_that_meets_a_nudge_stops_the_feed() -> None:
    """The feed's task is cancelled at shutdown and awaited: a nudge landing in the same loop
    iteration as the cancel must not keep it running (Python 3.11's wait_for swallowed it)."""
    feed = LiveFeed(sessions=None, interval_s=3600)  # type: ignore[arg-type]
    polled = asyncio.Event()

    async def nothing() -> None:
        return None

    async def poll() -> list[Change]:
        polled.set()
        return []

    feed.start_at_head = nothing  # type: ignore[method-assign]
    feed.poll = poll  # type: ignore[method-assign]
    with feed.subscribe(Actor(id="mgarcia", role="staff", departments=("reference",))):
        feed.nudge()  # already set when run() first waits
        running = asyncio.create_task(feed.run())
        await polled.wait()
        running.cancel()  # lands in the iteration in which the nudge is read
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(running, timeout=5)


async def test_a_commit_that_wrote_changes_nudges_and_one_that_did_not_does_not(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sync = sessionmaker()
    hooked = session_factory(sessions.kw["bind"], sync=sync)
    nudges: list[None] = []
    nudge_after_commit(sync, lambda: nudges.append(None))
    await arrive(hooked, "hooked-1", channel=Channel.SMS)  # the projection writes its rows
    assert len(nudges) >= 1
    before = len(nudges)
    async with hooked() as session:
        await session.execute(select(DeskChange.id))
        await session.commit()
    assert len(nudges) == before


class _Connected:
    async def is_disconnected(self) -> bool:
        return False


async def test_a_burst_of_changes_streams_in_order_to_every_console() -> None:
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]  # nothing is read from a database
    supervisor = Actor(id="dkim", role="supervisor", departments=("reference",))
    streams = [
        _stream(_Connected(), feed, supervisor, _still(supervisor))  # type: ignore[arg-type]
        for _ in range(2)
    ]
    for stream in streams:
        assert b"event: ready" in await anext(stream)
    burst = [Change(i, f"burst-{i}", "reference", False, "message") for i in (7, 8, 9)]
    feed.publish(burst)
    for stream in streams:
        events = (await anext(stream)).decode().split("\r\n\r\n")
        assert events[-1] == ""  # every event ends with a blank line
        ids = [line for event in events for line in event.split("\r\n") if line.startswith("id:")]
        assert ids == ["id: 7", "id: 8", "id: 9"]
        assert all("\r\nevent: conversation\r\n" in event for event in events[:-1])
        assert json.loads(events[0].split("data: ", 1)[1].split("\r\n")[0]) == {
            "conversation_id": "burst-7",
            "what": "message",
            "department": "reference",
            "crisis": False,
        }
        await stream.aclose()


def _still(*actors: Actor | None) -> Callable[[], Awaitable[Actor | None]]:
    """A recheck answering these in turn (the last one from then on)."""
    answers = list(actors)

    async def recheck() -> Actor | None:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return recheck


async def test_a_stream_whose_session_ended_says_so_and_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "RECHECK_S", 0.0)
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]
    staff = Actor(id="mgarcia", role="staff", departments=("reference",))
    stream = _stream(_Connected(), feed, staff, _still(None))  # type: ignore[arg-type]
    assert b"event: ready" in await anext(stream)
    feed.publish([Change(1, "after-sign-out", "reference", False, "message")])
    assert await anext(stream) == live.ENDED
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert not feed.subscribers


async def test_a_quiet_stream_whose_session_ended_closes_without_waiting_for_a_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "RECHECK_S", 0.05)
    monkeypatch.setattr(live, "PING_S", 3600)  # nothing but the recheck can wake it
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]
    staff = Actor(id="mgarcia", role="staff", departments=("reference",))
    stream = _stream(_Connected(), feed, staff, _still(staff, None))  # type: ignore[arg-type]
    assert b"event: ready" in await anext(stream)
    assert await asyncio.wait_for(anext(stream), timeout=10) == live.ENDED
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert not feed.subscribers


async def test_a_stream_follows_a_move_to_another_department(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "RECHECK_S", 0.0)
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]
    before = Actor(id="tbrooks", role="staff", departments=("nw-circulation",))
    moved = Actor(id="tbrooks", role="staff", departments=("writing-center",))
    stream = _stream(_Connected(), feed, before, _still(moved))  # type: ignore[arg-type]
    assert b"event: ready" in await anext(stream)
    sent = asyncio.create_task(anext(stream))
    feed.publish([Change(1, "nw-1", "nw-circulation", False, "message")])
    await asyncio.sleep(0.05)
    assert not sent.done()  # queued for who they were, held back for who they are now
    feed.publish([Change(2, "wc-1", "writing-center", False, "message")])
    text = (await asyncio.wait_for(sent, timeout=5)).decode()
    assert "wc-1" in text and "nw-1" not in text
    await stream.aclose()


def _drain(queue: asyncio.Queue) -> list:  # type: ignore[type-arg]
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def _free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def two_replicas(sessions: async_sessionmaker[AsyncSession]) -> tuple[Resources, Resources]:
    """The resources of two status replicas on one database (each its own publisher)."""
    settings = StatusSettings(env="development")
    a, b = (
        Resources(settings=settings, sessions=sessions, publisher=FakePublisher(), clock=Clock())
        for _ in range(2)
    )
    return a, b


@contextlib.asynccontextmanager
async def replica(resources: Resources) -> AsyncIterator[str]:
    """One status replica over real HTTP (the broker left out: a fake publisher)."""
    app = create_app(resources.settings)
    app.state.resources = resources
    feed = LiveFeed(resources.sessions, interval_s=0.05, render=live_rows(resources))
    resources.extra["live_feed"] = feed
    feeder = asyncio.create_task(feed.run())
    sock = _free_socket()
    server = QuietServer(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await serving


@pytest.mark.timeout(60)
async def test_a_note_added_on_one_replica_streams_to_a_console_on_the_other(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = StatusSettings(env="development")
    res_a = Resources(
        settings=settings, sessions=sessions, publisher=FakePublisher(), clock=Clock()
    )
    res_b = Resources(
        settings=settings, sessions=sessions, publisher=FakePublisher(), clock=Clock()
    )
    await arrive(sessions, "sse-1", channel=Channel.SMS)
    async with replica(res_a) as url_a, replica(res_b) as url_b, httpx.AsyncClient() as http:
        async with http.stream(
            "GET", f"{url_b}/console/events", headers=bearer("mgarcia"), timeout=30
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert await _next_event(lines) == ("ready", {})
            added = await http.post(
                f"{url_a}/conversations/sse-1/notes",
                json={"text": "checking the catalogue"},
                headers=bearer("jnguyen"),
            )
            assert added.status_code == 201
            event, data = await asyncio.wait_for(_next_event(lines), timeout=10)
    assert event == "conversation"
    assert (data["conversation_id"], data["what"]) == ("sse-1", "note")
    # the queue row as replica B rendered it (what a row fetch answers), never the note
    assert 'data-conversation-id="sse-1"' in data["row"]
    assert "checking" not in json.dumps(data)


@pytest.mark.timeout(60)
async def test_a_row_that_came_with_the_page_is_told_it_left_when_a_colleague_moves_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A librarian's page loaded a chat in its queue; a supervisor on the other replica moved it
    to the Southeast campus library. The stream had never carried that row (it came with the
    page), so it was not told it left: the row and its reply box stayed a minute, until the
    page's refresh. A stream now starts knowing the open conversations its caller may see."""
    res_a, res_b = two_replicas(sessions)
    await arrive(sessions, "on-page", channel=Channel.CHAT)
    async with replica(res_a) as url_a, replica(res_b) as url_b, httpx.AsyncClient() as http:
        async with http.stream(
            "GET", f"{url_b}/console/events", headers=bearer("mgarcia"), timeout=30
        ) as stream:
            lines = stream.aiter_lines()
            assert await _next_event(lines) == ("ready", {})
            moved = await http.post(
                f"{url_a}/conversations/on-page/transfer",
                json={"department": "campus-se"},
                headers=bearer("lokafor"),
            )
            assert moved.status_code == 200, moved.text
            event, data = await asyncio.wait_for(_next_event(lines), timeout=10)
    assert event == "conversation"
    assert (data["conversation_id"], data["what"], data["row"]) == ("on-page", "left", None)


@pytest.mark.timeout(60)
async def test_signing_out_ends_the_console_stream_on_every_replica(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "RECHECK_S", 0.0)
    res_a, res_b = two_replicas(sessions)
    await arrive(sessions, "sse-2", channel=Channel.SMS)
    async with replica(res_a) as url_a, replica(res_b) as url_b, httpx.AsyncClient() as http:
        signed = await http.post(
            f"{url_b}/dashboard/login", data={"staff_id": "mgarcia", "token": "dev-mgarcia-token"}
        )
        assert signed.status_code == 303
        async with http.stream("GET", f"{url_b}/console/events", timeout=30) as stream:
            lines = stream.aiter_lines()
            assert await _next_event(lines) == ("ready", {})
            out = await http.post(f"{url_a}/dashboard/logout")
            assert out.status_code in (200, 303)
            added = await http.post(
                f"{url_a}/conversations/sse-2/notes",
                json={"text": "checking the catalogue"},
                headers=bearer("jnguyen"),
            )
            assert added.status_code == 201
            assert await asyncio.wait_for(_next_event(lines), timeout=10) == ("ended", {})
            with pytest.raises(AssertionError, match="the stream ended"):
                await asyncio.wait_for(_next_event(lines), timeout=10)


async def _next_event(lines: AsyncIterator[str]) -> tuple[str, dict]:  # type: ignore[type-arg]
    event, data = "message", ""
    async for line in lines:
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data = line.split(":", 1)[1].strip()
        elif line == "" and data:
            return event, json.loads(data)
    raise AssertionError("the stream ended")


@pytest.fixture
async def rendering(resources: Resources, sessions: async_sessionmaker[AsyncSession]) -> LiveFeed:
    """A feed that renders the changed rows, as the app's, started at the head."""
    feed = LiveFeed(sessions, render=live_rows(resources))
    await feed.start_at_head()
    return feed


async def test_the_feed_sends_each_changed_row_once_rendered_to_those_who_may_see_it(
    rendering: LiveFeed, sessions: async_sessionmaker[AsyncSession]
) -> None:
    feed = rendering
    desk = Actor(id="mgarcia", role="staff", departments=("reference",))
    writing = Actor(id="rpatel", role="staff", departments=("writing-center",))
    with feed.subscribe(desk) as d, feed.subscribe(writing) as w:
        await arrive(sessions, "row-1", channel=Channel.SMS)
        await arrive(sessions, "row-wc", channel=Channel.CHAT, department="writing-center")
        feed.publish(await feed.poll())
        to_desk = {c.conversation_id: c for c in _drain(d.queue)}
        to_writing = {c.conversation_id: c for c in _drain(w.queue)}
    assert set(to_desk) == set(to_writing) == {"row-1", "row-wc"}
    # the desk was told of the message while it was still the desk's, then that it left for
    # the Writing Center (no row: its queue takes it out)
    assert json.loads(to_desk["row-wc"].payload)["what"] == "left"
    assert json.loads(to_desk["row-wc"].payload)["row"] is None
    sent = json.loads(to_desk["row-1"].payload)
    assert sent["row"].strip().startswith('<tr data-conversation-id="row-1"')
    assert "Reference Desk" in sent["row"] and "Unassigned" in sent["row"]
    assert 'data-conversation-id="row-wc"' in json.loads(to_writing["row-wc"].payload)["row"]

    async with sessions() as session:  # closed: the event says the row left the queue
        conv = await session.get(Conversation, "row-1")
        assert conv is not None
        conv.state = "closed"
        transcript.changed(session, conv, "closed", datetime.now(UTC))
        await session.commit()
    with feed.subscribe(desk) as d:
        feed.publish(await feed.poll())
        (closed,) = _drain(d.queue)
    assert json.loads(closed.payload)["row"] is None


def test_a_row_that_moved_since_its_change_is_left_for_the_page_to_fetch() -> None:
    """Who may see a change is decided on the change: a row that reads otherwise by now goes
    with the newer change that says so, never with this one."""
    change = Change(1, "moved-1", "reference", False, "routed")
    moved = RenderedRow(department="counseling", crisis=False, html="<tr></tr>")
    assert "row" not in json.loads(change.with_row({"moved-1": moved}).payload)
    same = RenderedRow(department="reference", crisis=False, html="<tr></tr>")
    assert json.loads(change.with_row({"moved-1": same}).payload)["row"] == "<tr></tr>"
    assert json.loads(change.with_row({}).payload)["row"] is None


async def test_changes_go_out_without_rows_when_rendering_fails(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def broken(_ids: list[str]) -> dict[str, RenderedRow]:
        raise RuntimeError("database went away")

    feed = LiveFeed(sessions, render=broken)
    await feed.start_at_head()
    desk = Actor(id="mgarcia", role="staff", departments=("reference",))
    with feed.subscribe(desk) as d:
        await arrive(sessions, "norow-1", channel=Channel.SMS)
        feed.publish(await feed.poll())
        got = _drain(d.queue)
    assert {c.conversation_id for c in got} == {"norow-1"}
    assert all("row" not in json.loads(c.payload) for c in got)  # the page fetches them


async def test_a_blocked_senders_unrouted_message_goes_out_without_its_row(
    rendering: LiveFeed, sessions: async_sessionmaker[AsyncSession]
) -> None:
    supervisor = Actor(id="dkim", role="supervisor", departments=("reference",))
    message = scene.message(
        "blocked-1",
        Channel.SMS,
        "buy cheap followers",
        minutes_ago=0,
        contact="+18175550100",
        blocked=True,
    )
    with rendering.subscribe(supervisor) as s:
        async with sessions() as session:
            await apply(session, event_id="i-blocked-1", data=message, assigning=Assigning())
            await session.commit()
        rendering.publish(await rendering.poll())
        (change,) = _drain(s.queue)
    # not in the queue until the router decides it: the row is null, the text never sent
    assert json.loads(change.payload)["row"] is None
    assert "followers" not in change.payload


async def test_a_recheck_that_cannot_run_keeps_the_stream_as_it_was() -> None:
    """The database briefly away: the stream keeps its last known actor, not a crash."""
    staff = Actor(id="mgarcia", role="staff", departments=("reference",))
    moved = Actor(id="mgarcia", role="staff", departments=("writing-center",))
    answers: list[Actor | Exception | None] = [moved, OSError("database away"), None]

    async def recheck() -> Actor | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    lenient = live._lenient(recheck, staff)
    assert await lenient() == moved
    assert await lenient() == moved  # the failed check keeps the last one
    assert await lenient() is None  # then the session ended


def test_a_message_not_yet_routed_reaches_only_those_who_see_crises() -> None:
    """An outside probe's crisis text, before the router decided it (a backlog, a router
    restart), went to every console with its words in the row."""
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]
    desk = Actor(id="mgarcia", role="staff", departments=("reference",))
    care = Actor(id="jnguyen", role="staff", departments=("care-team",))
    writing = Actor(id="rpatel", role="staff", departments=("writing-center",))
    boss = Actor(id="dkim", role="supervisor", departments=())
    with (
        feed.subscribe(desk) as d,
        feed.subscribe(care) as c,
        feed.subscribe(writing) as w,
        feed.subscribe(boss) as b,
    ):
        feed.publish([Change(1, "new-1", None, False, "message", rendered=True, row="<tr>")])
        assert [len(_drain(q.queue)) for q in (d, c, w, b)] == [1, 1, 0, 1]


def test_a_ticket_nobody_online_could_take_streams_to_the_desk_until_claimed() -> None:
    """A renewal the router made a ticket at NW Circulation (nobody there Online) reaches the
    desk's consoles, not the Writing Center's; claimed, it leaves the other librarian's."""
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]
    desk = Actor(id="mgarcia", role="staff", departments=("reference",))
    colleague = Actor(id="jnguyen", role="staff", departments=("reference", "campus-ne"))
    writing = Actor(id="rpatel", role="staff", departments=("writing-center",))
    with feed.subscribe(desk) as d, feed.subscribe(colleague) as c, feed.subscribe(writing) as w:
        feed.publish([Change(1, "due", "nw-circulation", False, "routed", None, desk=True)])
        feed.publish([Change(2, "due", "nw-circulation", False, "claimed", "mgarcia")])
        assert [(x.id, x.what) for x in _drain(d.queue)] == [(1, "routed"), (2, "claimed")]
        assert [(x.id, x.what) for x in _drain(c.queue)] == [(1, "routed"), (2, "left")]
        assert _drain(w.queue) == []


def test_a_stream_shown_a_conversation_is_told_when_it_moves_out_of_its_sight() -> None:
    """Routed to the CARE Team, a conversation a Writing Center tutor was shown (as the desk's)
    left their queue only at its next reload; now they are told it left, and nothing else."""
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]
    writing = Actor(id="rpatel", role="staff", departments=("writing-center",))
    with feed.subscribe(writing) as w:
        feed.publish([Change(1, "c-1", "reference", False, "message", rendered=True, row="<tr>")])
        feed.publish([Change(2, "c-1", "care-team", True, "routed", rendered=True, row="<tr>x")])
        feed.publish([Change(3, "c-1", "care-team", True, "message", rendered=True, row="<tr>")])
        feed.publish([Change(4, "c-2", "care-team", True, "routed", rendered=True, row="<tr>")])
        got = _drain(w.queue)
    assert [(c.id, c.what) for c in got] == [(1, "message"), (2, "left")]
    assert json.loads(got[1].payload) == {
        "conversation_id": "c-1",
        "what": "left",
        "department": None,
        "crisis": False,
        "row": None,
    }


def test_a_stream_forgets_a_conversation_once_it_left_the_open_queue() -> None:
    """Each stream kept every conversation it was shown, closed ones too, up to 5,000: about
    0.6 MB a console within the hour (an outside review). A closed conversation's change (no
    row) still reaches the stream, which then forgets it; one it shows again is kept again."""
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]
    staff = Actor(id="mgarcia", role="staff", departments=("reference",))
    with feed.subscribe(staff) as sub:
        feed.publish([Change(1, "c-1", "reference", False, "message", rendered=True, row="<tr>")])
        feed.publish([Change(2, "c-2", "reference", False, "message", rendered=True, row="<tr>")])
        assert list(sub.shown) == ["c-1", "c-2"]
        feed.publish([Change(3, "c-1", "reference", False, "closed", rendered=True, row=None)])
        assert list(sub.shown) == ["c-2"]
        feed.publish([Change(4, "c-1", "reference", False, "message", rendered=True, row="<tr>")])
        # not rendered (the pages fetch the row): still on the page, still remembered
        feed.publish([Change(5, "c-2", "reference", False, "claimed")])
        assert list(sub.shown) == ["c-1", "c-2"]
        assert [(c.id, c.what) for c in _drain(sub.queue)] == [
            (1, "message"),
            (2, "message"),
            (3, "closed"),
            (4, "message"),
            (5, "claimed"),
        ]


def test_the_librarian_a_crisis_escalation_left_with_the_patron_keeps_its_changes() -> None:
    """Escalated to the CARE Team by the router, a Writing Center chat stays with its tutor:
    their console keeps its row; another tutor of the department is told it left."""
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]
    mine = Actor(id="rpatel", role="staff", departments=("writing-center",))
    other = Actor(id="tbrooks", role="staff", departments=("writing-center",))
    with feed.subscribe(mine) as m, feed.subscribe(other) as o:
        feed.publish([Change(1, "c-1", "writing-center", False, "claimed", "rpatel")])
        feed.publish([Change(2, "c-1", "care-team", True, "routed", "rpatel")])
        feed.publish([Change(3, "c-1", "care-team", True, "message", "rpatel")])
        assert [(c.id, c.what) for c in _drain(m.queue)] == [
            (1, "claimed"),
            (2, "routed"),
            (3, "message"),
        ]
        assert [(c.id, c.what) for c in _drain(o.queue)] == [(1, "claimed"), (2, "left")]


@pytest.mark.parametrize(
    ("last", "reload"), [(None, False), ("9", False), ("5", True), ("x", True)]
)
async def test_a_stream_reopened_behind_the_feed_is_told_to_reload(
    last: str | None, reload: bool
) -> None:
    """Changes are not replayed: a reconnect naming an older id than the newest would miss
    them silently, so it is told to fetch its view again."""
    feed = LiveFeed(sessions=None)  # type: ignore[arg-type]
    feed.last_id = 9
    staff = Actor(id="mgarcia", role="staff", departments=("reference",))
    missed = live._behind(last, feed)
    stream = _stream(_Connected(), feed, staff, _still(staff), missed)  # type: ignore[arg-type]
    assert b"event: ready" in await anext(stream)
    if reload:
        assert await anext(stream) == live.RELOAD
    feed.publish([Change(10, "c-10", "reference", False, "message")])
    assert b"c-10" in await anext(stream)
    await stream.aclose()


async def test_a_revoked_token_ends_its_stream_even_from_a_throttled_address(
    resources: Resources,
) -> None:
    """An outside probe: after 21 wrong tokens from its address, a revoked token's recheck was
    answered 429, which the stream took for the database being away, and it streamed on."""
    from starlette.requests import Request

    from services.status.deps import current_actor, still_signed_in
    from services.status.openapi import STAFF_BEARER
    from services.status.throttle import bearer_actor

    def request(token: str) -> Request:
        return Request(
            {
                "type": "http",
                "method": "GET",
                "path": "/console/events",
                "headers": [(b"authorization", f"Bearer {token}".encode())],
                "client": ("10.0.0.9", 5000),
                "query_string": b"",
            }
        )

    async with resources.sessions() as session:
        assert await still_signed_in(request("dev-mgarcia-token"), resources, session) is not None
        for n in range(25):  # a typist behind the same address
            with contextlib.suppress(Exception):
                await bearer_actor(
                    request=request(f"wrong-{n}"),
                    extra=resources.extra,
                    session=session,
                    token=f"wrong-{n}",
                    now=resources.clock().timestamp(),
                )
        revoked = request("dev-revoked-token")
        with pytest.raises(HTTPException) as throttled:  # what the stream had asked
            await current_actor(revoked, resources, session, await STAFF_BEARER(revoked))
        assert throttled.value.status_code == 429
        assert await still_signed_in(revoked, resources, session) is None
        # and the recheck of a good token is not refused for its address
        assert await still_signed_in(request("dev-mgarcia-token"), resources, session) is not None


@pytest.mark.parametrize(
    ("departments", "department", "crisis", "seen"),
    [
        (("nw-circulation",), "reference", False, True),  # the desk's queue is everyone's
        (("nw-circulation",), "reference", True, False),  # not its crises or possible ones
        (("writing-center",), "reference", True, False),
        (("reference",), "reference", True, True),
        (("care-team",), "reference", True, True),
        (("nw-circulation",), "nw-circulation", True, True),  # one's own department's
    ],
)
def test_the_stream_sends_a_crisis_at_the_desk_only_to_crisis_staff(
    departments: tuple[str, ...], department: str, crisis: bool, seen: bool
) -> None:
    """The pages had stopped showing other departments' staff a crisis or a possible crisis at
    the desk, but the live stream still sent them its rows: "I'm outside the library waiting
    for you" and a patron's street address in a circulation librarian's console (an outside
    review)."""
    actor = Actor(id="someone", role="staff", departments=departments)
    change = Change(id=1, conversation_id="c", department=department, crisis=crisis, what="message")
    assert live.may_see(actor, change) is seen
