"""What the status service answers while the broker or the database is away (an operator's
probe): a bounded answer, never a request that waits without limit or a bare 500; a staff
action's events kept in the outbox until the broker is back; sweeps that go on without it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from status_fakes import Clock, FakePublisher, PingedBroker, arrive, bearer

from services.status import app as status_app
from services.status.app import create_app
from services.status.auth import COOKIE, sign_session
from services.status.models import Conversation, OutboxRecord
from services.status.periodic import tick
from services.status.presence import set_status
from services.status.resources import KafkaPublisher, Resources
from services.status.settings import StatusSettings
from shared.clock import utcnow
from shared.events import Channel, NotificationRequested, StaffStatus
from shared.topics import DESK, NOTIFICATIONS

pytestmark = pytest.mark.timeout(60)


class SilentBroker:
    """A broker that takes records and never acknowledges them (Kafka down)."""

    async def publish(self, *_args: Any, **_kwargs: Any) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_reply_with_the_broker_away_is_kept_and_published_once_it_is_back(
    resources: Resources,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    """A note and a shift start waited 200 s and more for a broker that was down. Then a
    reply made while the broker was down was answered 503 ("saved; refdesk passes it on once
    the broker answers") and lost when the producer gave up: the patron never got it, while
    the console said refdesk was still trying (an outside review). The action is answered in
    bounded time, its events wait in the outbox, the relay publishes them once the broker is
    back under the ids they were saved with, and a later action on the conversation publishes
    the waiting ones first."""
    await arrive(sessions, "sms-away", channel=Channel.SMS)
    silent = KafkaPublisher(SilentBroker(), timeout_s=0.2)  # type: ignore[arg-type]
    app = create_app(resources.settings)
    app.state.resources = replace(resources, publisher=silent)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
        answer = await asyncio.wait_for(
            client.post(
                "/conversations/sms-away/replies",
                json={"text": "Your laptop is renewed until Friday."},
                headers=bearer("mgarcia"),
            ),
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        shown = await client.get("/conversations/sms-away", headers=bearer("mgarcia"))
        assert "renewed until Friday" in shown.text
    async with sessions() as session:
        waiting = (await session.execute(select(OutboxRecord))).scalars().all()
    reply = next(r for r in waiting if r.topic == NOTIFICATIONS.name)
    await tick(resources)  # the broker is back, but the record is still the request's own
    assert publisher.on(NOTIFICATIONS.name) == []
    clock.advance(31)
    await tick(resources)
    sent = publisher.on(NOTIFICATIONS.name)
    assert len(sent) == 1 and isinstance(sent[0], NotificationRequested)
    assert sent[0].context["text"] == "Your laptop is renewed until Friday."
    assert reply.event_id in publisher.event_ids
    async with sessions() as session:
        assert (await session.execute(select(OutboxRecord))).scalars().all() == []
    # once more with the broker away, then a note with it back: the reply goes first
    app.state.resources = replace(resources, publisher=silent)
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
        await client.post(
            "/conversations/sms-away/replies",
            json={"text": "It is at the front desk."},
            headers=bearer("mgarcia"),
        )
        app.state.resources = resources
        note = await client.post(
            "/conversations/sms-away/notes",
            json={"text": "texted twice"},
            headers=bearer("mgarcia"),
        )
        assert note.status_code == 201
    kinds = [type(data).__name__ for _topic, data, _key in publisher.sent[-2:]]
    assert kinds == ["NotificationRequested", "StaffNoteAdded"]
    async with sessions() as session:
        assert (await session.execute(select(OutboxRecord))).scalars().all() == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_with_the_broker_known_away_an_action_waits_for_nothing_and_the_relay_for_it(
    resources: Resources,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    """Each action had waited the publish timeout, and each relay pass left one more copy of
    the oldest record in the producer's buffer, while the broker was away (an outside
    review): once it does not answer a ping, neither tries until it does."""
    broker = PingedBroker()
    away = replace(resources, broker=broker, extra={})  # type: ignore[arg-type]
    await arrive(sessions, "sms-known", channel=Channel.SMS)
    app = create_app(resources.settings)
    app.state.resources = away
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
        answer = await client.post(
            "/conversations/sms-known/notes", json={"text": "tried"}, headers=bearer("mgarcia")
        )
    assert answer.status_code == 201
    clock.advance(31)
    away.extra.clear()
    await tick(away)
    assert publisher.on(DESK.name) == []  # nothing tried
    broker.up = True
    away.extra.clear()  # the next ping is asked
    await tick(away)
    assert [type(e).__name__ for e in publisher.on(DESK.name)] == ["StaffNoteAdded"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_outbox_record_that_cannot_be_read_back_holds_up_nothing(
    resources: Resources,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One unreadable record stopped every relay pass at itself, and the replies saved after
    it waited until someone acted on their conversation (an outside review)."""
    await arrive(sessions, "sms-next", channel=Channel.SMS)
    async with sessions() as session:
        session.add(
            OutboxRecord(
                topic=DESK.name,
                key="sms-bad",
                event_id="bad-1",
                type="edu.tccd.refdesk.desk.note_added.v1",
                data='{"not": "valid"}',
                created_at=clock(),
            )
        )
        await session.commit()
    app = create_app(resources.settings)
    silent = KafkaPublisher(SilentBroker(), timeout_s=0.1)  # type: ignore[arg-type]
    app.state.resources = replace(resources, publisher=silent)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
        await client.post(
            "/conversations/sms-next/notes", json={"text": "after"}, headers=bearer("mgarcia")
        )
    clock.advance(31)
    await tick(resources)
    assert [type(e).__name__ for e in publisher.on(DESK.name)] == ["StaffNoteAdded"]
    async with sessions() as session:
        left = (await session.execute(select(OutboxRecord.event_id))).scalars().all()
    assert left == ["bad-1"]  # kept in sight: the gauge and its alert say so
    assert "cannot be read back" in caplog.text


async def test_the_sweeps_go_on_when_the_broker_is_away(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """The pass published presence first and stopped at its failure: the crisis and unsent
    reply sweeps, retention and the gauges waited for the broker."""

    class Refusing(FakePublisher):
        async def __call__(
            self, topic: str, data: Any, *, key: str, event_id: str | None = None
        ) -> None:
            raise TimeoutError("broker away")

    await arrive(sessions, "swept", channel=Channel.CHAT)
    async with sessions() as session:
        conv = await session.get(Conversation, "swept")
        assert conv is not None
        conv.state, conv.closed_at = "closed", clock() - timedelta(days=400)
        await set_status(
            session=session,
            staff_id="mgarcia",
            status=StaffStatus.ONLINE,
            actor_id="mgarcia",
            now=clock(),
            shift="start",
        )
        await session.commit()
    away = replace(
        resources,
        publisher=Refusing(),
        settings=resources.settings.model_copy(update={"transcript_retention_days": 30}),
    )
    away.extra["republish_presence"] = True  # a presence sweep that must publish
    await tick(away)  # nothing raised: only presence failed
    async with sessions() as session:
        conv = await session.get(Conversation, "swept")
        assert conv is not None and conv.purged_at is not None  # retention still ran


async def test_a_database_that_is_down_is_answered_503_not_500(settings: StatusSettings) -> None:
    """PostgreSQL stopped: status answered the queue and notes "Internal Server Error"."""
    engine = create_async_engine("postgresql+asyncpg://refdesk:x@127.0.0.1:1/refdesk")
    try:
        down = Resources(
            settings=settings,
            sessions=async_sessionmaker(engine, expire_on_commit=False),
            publisher=FakePublisher(),
        )
        app = create_app(settings)
        app.state.resources = down
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
            api = await client.get("/conversations", headers=bearer("mgarcia"))
            assert api.status_code == 503, api.text
            assert api.headers["content-type"] == "application/problem+json"
            assert api.headers["retry-after"] == "5"
            # a browser signed in before the database went away
            cookie = sign_session(
                "mgarcia",
                secret=settings.session_secret,
                now=utcnow(),
                max_age_s=3600,
                session_id="s" * 43,
            )
            client.cookies.set(COOKIE, cookie)
            page = await client.get("/dashboard", headers={"Accept": "text/html"})
            assert page.status_code == 503
            assert "The desk console is not available right now" in page.text
            # the sign-in form in its own words (it showed raw problem+json)
            client.cookies.clear()
            form = await client.post(
                "/dashboard/login",
                data={"staff_id": "mgarcia", "token": "dev-mgarcia-token"},
                headers={"Accept": "text/html,application/xhtml+xml"},
            )
            assert form.status_code == 503 and form.headers["retry-after"] == "5"
            assert form.headers["content-type"].startswith("text/html")
            assert "cannot reach its database right now" in form.text
    finally:
        await engine.dispose()


async def test_a_replica_started_while_the_broker_is_away_serves_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status replica started (or restarted) during a broker outage served nothing until
    the broker was back, and exited every 120 s (an outside review): it now serves from its
    database, ready, its staff actions waiting in the outbox, while it connects in the
    background."""
    monkeypatch.setattr(status_app, "CONNECT_AT_START_S", 0.5)
    settings = StatusSettings(run_dir=tmp_path, kafka_bootstrap="127.0.0.1:9")  # nobody there
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"kafka": False, "database": True}
            page = await client.get("/dashboard", headers={"Accept": "text/html"})
            assert page.status_code == 200
            shift = await client.post("/shift/login", headers=bearer("mgarcia"))
            assert shift.status_code in (200, 503), shift.text  # presence: republished later
        connecting = app.state.resources.extra[status_app.CONNECTING]
        assert not connecting.done()  # still trying
    assert connecting.cancelled()  # and stopped with the app
