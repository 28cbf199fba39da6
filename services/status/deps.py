"""What routes depend on: resources built by the lifespan, a DB session, the signed-in actor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request
from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.status.auth import COOKIE, Actor, read_session
from services.status.conversations.macros import MacroBook
from services.status.errors import Forbidden, Unauthenticated, Unavailable
from services.status.sessions import session_actor
from services.status.settings import StatusSettings
from services.status.throttle import bearer_actor
from shared.clock import utcnow as utcnow  # re-exported for app.py until it imports shared.clock
from shared.events import PresenceChanged
from shared.kafka import publish
from shared.metrics import PUBLISH_SECONDS, PUBLISHED
from shared.topics import PRESENCE

SOURCE = "refdesk/status"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "x-requested-with"
REPUBLISH = "republish_presence"


class Publisher(Protocol):
    async def __call__(self, topic: str, data: BaseModel, *, key: str) -> None:
        """Publish one event and return once the broker acknowledged it."""


class KafkaPublisher:
    """Publishes CloudEvents through the service's broker (acks=all)."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker

    async def __call__(self, topic: str, data: BaseModel, *, key: str) -> None:
        """Publish and count."""
        with PUBLISH_SECONDS.labels(topic=topic).time():
            await publish(self.broker, topic, data, key=key, source=SOURCE)
        PUBLISHED.labels(topic=topic).inc()


@dataclass
class Resources:
    """Everything the routes, consumers and sweeps share; built once per app."""

    settings: StatusSettings
    sessions: async_sessionmaker[AsyncSession]
    publisher: Publisher
    clock: Callable[[], datetime] = utcnow
    engine: AsyncEngine | None = None
    broker: KafkaBroker | None = None
    book: MacroBook = field(default_factory=MacroBook)
    extra: dict[str, object] = field(default_factory=dict)


async def publish_presence(res: Resources, events: list[PresenceChanged]) -> None:
    """Publish presence changes keyed by staff id (after their commit)."""
    try:
        for event in events:
            await res.publisher(PRESENCE.name, event, key=event.staff_id)
    except Exception as exc:
        res.extra[REPUBLISH] = True  # the next sweep republishes everyone's presence
        raise Unavailable("change saved; presence event not published yet") from exc


async def publish_all(res: Resources, events: list[tuple[str, BaseModel]], *, key: str) -> None:
    """Publish an action's events after its commit; 503 if the broker did not take them
    (the change is saved, and repeating the request publishes them again)."""
    try:
        for topic, event in events:
            await res.publisher(topic, event, key=key)
    except Exception as exc:
        raise Unavailable("saved; the events were not published yet: try again") from exc


def get_resources(request: Request) -> Resources:
    """The app's resources."""
    res: Resources = request.app.state.resources
    return res


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def db_session(res: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with res.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(db_session)]


async def current_actor(request: Request, res: ResourcesDep, session: SessionDep) -> Actor:
    """The staff member behind a bearer token or the dashboard's session cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("expected a bearer token")
        return await bearer_actor(
            request=request,
            extra=res.extra,
            session=session,
            token=token.strip(),
            now=res.clock().timestamp(),
        )
    cookie = request.cookies.get(COOKIE)
    if read_session(cookie, secret=res.settings.session_secret, now=res.clock()) is None:
        raise Unauthenticated("sign in or send a bearer token")
    if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != "refdesk":
        raise Forbidden("cookie-authenticated changes need the X-Requested-With: refdesk header")
    actor = await session_actor(
        session=session, cookie=cookie, secret=res.settings.session_secret, now=res.clock()
    )
    if actor is None:  # signed out, token revoked or staff deactivated since
        raise Unauthenticated("the session has ended; sign in again")
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
