"""Live updates for every signed-in console, on every replica.

Each projection change and staff action writes a `desk_changes` row in its own transaction.
One feed task per replica reads new rows every `interval_s` (and at once when this replica
has just committed some: `nudge`) and hands each to the subscribers (one queue per open
event stream) allowed to see that conversation. Because the rows live in the shared
database, a change applied by any replica reaches consoles on all of them; a console needs
no sticky sessions.

PostgreSQL may commit a lower id after a higher one was read, so each poll also asks again
for the ids of the last `LOOKBACK` it has not seen yet (its gaps), and skips ids already
handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.status.auth import Actor, has_role
from services.status.conversations.policy import CRISIS_DEPARTMENTS, DESK
from services.status.deps import ActorDep, SessionDep, get_resources, still_signed_in
from services.status.models import Conversation, DeskChange
from services.status.openapi import SIGNED_IN
from services.status.queue import BAND, visible_to
from services.status.resources import Resources
from shared.clock import woken
from shared.logs import REPEATING

log = logging.getLogger(__name__)

LOOKBACK = 200
_CHANGE_COLUMNS = (
    DeskChange.id,
    DeskChange.conversation_id,
    DeskChange.department,
    DeskChange.crisis,
    DeskChange.what,
    DeskChange.assignee,
    DeskChange.desk,
)
"""What a poll reads of each row, in the order of `Change`'s fields."""
QUEUE_SIZE = 1000
PING_S = 15
RELOAD = ServerSentEvent(event="reload", data="{}").encode()
"""Told to a stream that fell behind: reload the queue."""
ENDED = ServerSentEvent(event="ended", data="{}").encode()
"""Told to a stream whose session or token has ended, just before it closes."""
LEFT = "left"
"""A change's `what` for a stream that was shown a conversation it may no longer see."""
SHOWN_KEPT = 5000
RECHECK_S = 2.0
"""How long a stream trusts the credentials it was opened with before checking them again."""


@dataclass(frozen=True)
class RenderedRow:
    """A conversation's queue row as the console shows it, and what decides who may see it."""

    department: str | None
    crisis: bool
    html: str


Render = Callable[[list[str]], Awaitable[dict[str, RenderedRow]]]
"""The open queue rows of these conversations, rendered (a conversation not in the open queue
is left out)."""


@dataclass(frozen=True)
class Change:
    """One change to a conversation; with its queue row when the feed rendered it (`row`
    None: no longer in the open queue)."""

    id: int
    conversation_id: str
    department: str | None
    crisis: bool
    what: str
    assignee: str | None = None
    desk: bool = False
    """The desk's staff see it too (`policy.desk_sees`)."""
    rendered: bool = False
    row: str | None = None

    @functools.cached_property
    def event(self) -> bytes:
        """The change as a server-sent event (encoded once for every stream)."""
        return ServerSentEvent(event="conversation", data=self.payload, id=str(self.id)).encode()

    @functools.cached_property
    def payload(self) -> str:
        """The event's data as the console reads it."""
        data: dict[str, Any] = {
            "conversation_id": self.conversation_id,
            "what": self.what,
            "department": self.department,
            "crisis": self.crisis,
        }
        if self.rendered:
            data["row"] = self.row
        return json.dumps(data)

    def left(self) -> Change:
        """What a stream that may no longer see the conversation is told: only that it left
        its queue (no department, flag or row), so the console takes the row out."""
        return Change(self.id, self.conversation_id, None, False, LEFT, None, rendered=True)

    def with_row(self, rows: dict[str, RenderedRow]) -> Change:
        """The change with its row, if the row still reads as the change does: a row that
        moved department or crisis flag since goes with the newer change that says so (who
        may see a change is decided on the change), and this one leaves the page to fetch."""
        row = rows.get(self.conversation_id)
        if row is None:
            return replace(self, rendered=True, row=None)
        if (row.department, row.crisis) != (self.department, self.crisis):
            return self
        return replace(self, rendered=True, row=row.html)


def may_see(actor: Actor, change: Change) -> bool:
    """The policy table's visibility rule, on a change row."""
    if has_role(actor, "supervisor"):
        return True
    if change.what == LEFT:
        return True  # made only for a stream that was shown the conversation (`publish`)
    if change.assignee is not None and change.assignee == actor.id:
        return True  # the librarian a crisis escalation left with the patron
    departments = set(actor.departments)
    crisis_department = bool(departments & CRISIS_DEPARTMENTS)
    if change.department in departments:
        return True
    if change.department == DESK and not change.crisis:
        # the desk's queue is everyone's, a crisis or a possible one there only its crisis
        # staff's (`policy.relation`): the stream had sent other departments' staff its rows,
        # previews and all, after the pages stopped showing them (an outside review)
        return True
    if change.desk and DESK in departments:  # a ticket nobody Online could take
        return True
    if change.department is None:  # not routed yet: it may be a crisis
        return crisis_department
    return change.crisis and crisis_department


@dataclass(eq=False)
class Subscriber:
    """One open event stream (hashed by identity)."""

    actor: Actor
    queue: asyncio.Queue[Change | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )
    shown: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """Conversations this stream was handed a change of (the latest SHOWN_KEPT): when one
    moves where it may not see, it is told the conversation left (`LEFT`), so its row goes."""

    def was_shown(self, conversation_id: str) -> None:
        self.shown[conversation_id] = None
        self.shown.move_to_end(conversation_id)
        while len(self.shown) > SHOWN_KEPT:
            self.shown.popitem(last=False)


@dataclass
class LiveFeed:
    """This replica's reader of the change table, fanning out to its event streams."""

    sessions: async_sessionmaker[AsyncSession]
    interval_s: float = 0.25
    render: Render | None = None
    """Renders the changed conversations' queue rows once per poll for every stream, so an
    open console need not fetch a row per change (None: events without rows)."""
    subscribers: set[Subscriber] = field(default_factory=set)
    last_id: int = 0
    floor: int = 0
    """Changes up to this id happened before this replica started: never handed out."""
    seen: deque[int] = field(default_factory=lambda: deque(maxlen=4 * LOOKBACK))
    _woken: asyncio.Event = field(default_factory=asyncio.Event)

    def nudge(self) -> None:
        """This replica committed changes: read them now, not at the next interval (changes
        committed by other replicas still arrive within `interval_s`). Nothing to do while no
        console is open here."""
        if self.subscribers:
            self._woken.set()

    async def start_at_head(self) -> None:
        """Skip what happened before this replica started."""
        async with self.sessions() as session:
            self.last_id = int(await session.scalar(select(func.max(DeskChange.id))) or 0)
        self.floor = self.last_id

    async def poll(self) -> list[Change]:
        """New changes since the last poll, oldest first: the rows after the last id read,
        and any of the last `LOOKBACK` ids not seen yet (read as plain rows, not objects)."""
        seen = set(self.seen)
        window = range(max(self.floor, self.last_id - LOOKBACK) + 1, self.last_id + 1)
        gaps = [i for i in window if i not in seen]
        wanted = DeskChange.id > self.last_id
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(*_CHANGE_COLUMNS)
                    .where(or_(wanted, DeskChange.id.in_(gaps)) if gaps else wanted)
                    .order_by(DeskChange.id)
                    .limit(QUEUE_SIZE)
                )
            ).all()
        fresh: list[Change] = []
        for row in rows:
            if row.id in seen or row.id <= self.floor:
                continue
            self.seen.append(row.id)
            fresh.append(Change(*row))
        if rows:
            self.last_id = max(self.last_id, rows[-1].id)
        if fresh and self.render is not None and self.subscribers:
            fresh = await self._with_rows(self.render, fresh)
        return fresh

    @staticmethod
    async def _with_rows(render: Render, changes: list[Change]) -> list[Change]:
        """The changes with their rendered rows; without them if rendering fails (the pages
        fetch the rows then): the changes themselves are already read and must go out."""
        try:
            rendered = await render(sorted({change.conversation_id for change in changes}))
        except Exception as exc:
            log.warning("live rows not rendered", extra={"error": type(exc).__name__})
            return changes
        return [change.with_row(rendered) for change in changes]

    def publish(self, changes: list[Change]) -> None:
        """Hand changes to each stream allowed to see them; a stream too slow to keep up is
        told to reload (its queue is replaced by one `None`)."""
        for sub in list(self.subscribers):
            for change in changes:
                if may_see(sub.actor, change):
                    if change.rendered and change.row is None:
                        # out of the open queue (closed): nothing left there to take away,
                        # and kept, each stream's list had filled to its cap within the hour
                        sub.shown.pop(change.conversation_id, None)
                    else:
                        sub.was_shown(change.conversation_id)
                elif change.conversation_id in sub.shown:
                    del sub.shown[change.conversation_id]
                    change = change.left()
                else:
                    continue
                try:
                    sub.queue.put_nowait(change)
                except asyncio.QueueFull:
                    while not sub.queue.empty():
                        sub.queue.get_nowait()
                    sub.queue.put_nowait(None)
                    break

    async def run(self) -> None:
        """Poll and publish until cancelled."""
        await self.start_at_head()
        while True:
            try:
                self.publish(await self.poll())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "live feed poll failed", extra={"error": type(exc).__name__, REPEATING: True}
                )
            await woken(self._woken, self.interval_s)
            self._woken.clear()

    @contextlib.contextmanager
    def subscribe(self, actor: Actor) -> Any:
        """A subscriber for one event stream, removed when the stream ends."""
        sub = Subscriber(actor)
        self.subscribers.add(sub)
        try:
            yield sub
        finally:
            self.subscribers.discard(sub)


router = APIRouter(prefix="/console", tags=["console"], responses=SIGNED_IN)


async def get_feed(res: Annotated[Resources, Depends(get_resources)]) -> LiveFeed:
    """This replica's live feed (started by the app's lifespan)."""
    feed = res.extra.get("live_feed")
    if not isinstance(feed, LiveFeed):
        feed = LiveFeed(res.sessions)
        res.extra["live_feed"] = feed
    return feed


Recheck = Callable[[], Awaitable[Actor | None]]
"""Who the stream's credentials name now (None: signed out, revoked or deactivated)."""


async def _stream(
    request: Request,
    feed: LiveFeed,
    actor: Actor,
    recheck: Recheck,
    missed: bool = False,
    on_page: Iterable[str] = (),
) -> AsyncIterator[bytes]:
    checked = time.monotonic()
    with feed.subscribe(actor) as sub:
        for conversation_id in on_page:
            sub.was_shown(conversation_id)
        yield ServerSentEvent(event="ready", data="{}").encode()
        if missed:
            yield RELOAD
        while True:
            try:
                # woken at least every RECHECK_S, changes or not, so a stream whose session
                # ended (signed out in another tab) learns it within that time
                async with asyncio.timeout(RECHECK_S):
                    change = await sub.queue.get()
            except TimeoutError:
                if await request.is_disconnected():
                    return
                change = False
            if time.monotonic() - checked >= RECHECK_S:
                # a stream outlives its request: whoever signed out, lost a token or moved
                # department since it opened gets nothing more than they may now see
                fresh = await recheck()
                if fresh is None:
                    yield ENDED
                    return
                sub.actor, checked = fresh, time.monotonic()
            if change is False:
                continue
            # a poll's changes arrive together: what is queued goes out as one write
            burst = [change]
            while not sub.queue.empty():
                burst.append(sub.queue.get_nowait())
            shown = [c for c in burst if c is None or may_see(sub.actor, c)]
            if shown:
                yield b"".join(RELOAD if c is None else c.event for c in shown)


def _rechecker(request: Request, res: Resources) -> Recheck:
    """The stream's credentials checked again as a new request would check them."""

    async def recheck() -> Actor | None:
        async with res.sessions() as session:
            return await still_signed_in(request, res, session)

    return recheck


def _lenient(recheck: Recheck, actor: Actor) -> Recheck:
    """A recheck that keeps the stream's last known actor when the check itself fails (the
    database briefly away): the stream stays open and is checked again next time."""

    async def checked() -> Actor | None:
        nonlocal actor
        try:
            found = await recheck()
        except Exception as exc:
            log.warning(
                "live stream recheck failed", extra={"error": type(exc).__name__, REPEATING: True}
            )
            return actor
        if found is not None:
            actor = found
        return found

    return checked


@router.get("/events", summary="Live changes to the conversations the caller may see (SSE)")
async def events(
    request: Request,
    actor: ActorDep,
    res: Annotated[Resources, Depends(get_resources)],
    feed: Annotated[LiveFeed, Depends(get_feed)],
    session: SessionDep,
) -> EventSourceResponse:
    """`event: conversation` with {conversation_id, what, department, crisis} and, when the
    feed rendered it, `row`: the conversation's queue row as HTML (null: no longer in the open
    queue); `event: reload` when this stream fell behind; a comment ping every 15 s. The
    credentials are checked again every two seconds, changes or not: once the
    session or token has ended (signed out, revoked, staff deactivated) the stream says
    `event: ended` and closes.

    Each change's `id` is its place in the desk's change log. A stream is not replayed: one
    reopened with `Last-Event-ID` older than the newest change gets `event: reload` right
    after `ready`, so the client fetches its view again instead of silently missing what
    changed while it was away. `event: conversation` with `what: "left"` and a null row tells
    a stream that was shown a conversation that it moved where this caller may not see it."""
    missed = _behind(request.headers.get("last-event-id"), feed)
    recheck = _lenient(_rechecker(request, res), actor)
    stream = _stream(request, feed, actor, recheck, missed, await _on_page(session, actor))
    return EventSourceResponse(stream, ping=PING_S)


async def _on_page(session: AsyncSession, actor: Actor) -> list[str]:
    """The open conversations the caller's page may be showing: the rows it loaded came with
    the page, not from this stream, so a colleague's transfer of one out of the caller's sight
    must still tell this stream it left (a probe's row stayed for a minute, reply box live).
    Nothing is lost if the database cannot answer: the page's minute refresh still clears it.
    Read on the request's own session (the one that named the caller, released before the
    stream starts): a second one per stream held two pooled connections each while it opened,
    and a shift's consoles opening together used the pool up."""
    query = (
        select(Conversation.conversation_id)
        .where(visible_to(actor), Conversation.state == "open")
        .order_by(BAND, Conversation.opened_at, Conversation.conversation_id)
        .limit(SHOWN_KEPT)
    )
    try:
        return list((await session.scalars(query)).all())
    except SQLAlchemyError as exc:
        log.warning(
            "live stream could not read its page's rows", extra={"error": type(exc).__name__}
        )
        return []


def _behind(last_event_id: str | None, feed: LiveFeed) -> bool:
    """Whether a reconnecting stream missed changes: it names an id older than the newest."""
    if not last_event_id:
        return False
    try:
        return int(last_event_id) < feed.last_id
    except ValueError:
        return True  # not an id this feed gave: it cannot know what it missed
