"""Replay windows at the ends of the calendar, and what any unhandled error answers.

A time such as 9999-12-31T23:59:59-06:00 is valid ISO 8601 but lies in year 10000 in UTC,
which no time column holds: the API refuses it (422), and the column type (shared.db.UTCDateTime)
never crashes binding one. An error no handler expected answers problem+json 500 without
its text, never Starlette's text/plain page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from services.publisher import admin_api, deliveries
from services.publisher.deps import Resources
from services.publisher.egress import Egress
from services.publisher.settings import PublisherSettings
from services.publisher.tables import Subscription
from shared.db import UTC_MAX, UTC_MIN, as_utc, create_engine, migrate, session_factory
from shared.events import AnyEvent, PublicDepartmentPresence, new_event
from shared.http import PROBLEM, install_http_guards, install_problem_handlers
from tests.fakes import secret_like

TOKEN = "unit-admin-token-0123456789abcdefghijkl"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T = datetime(2025, 12, 1, 15, tzinfo=UTC)


async def public_dns(_host: str, _port: int) -> list[str]:
    return ["93.184.216.34"]


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Resources, str]]:
    """The admin API on a real database, with one subscription that has one dead delivery."""
    engine = create_engine(database_url)
    await migrate(engine, "publisher")
    res = Resources(
        settings=PublisherSettings(
            env="production", admin_token=TOKEN, public_hash_key=secret_like("hash")
        ),
        sessions=session_factory(engine),
        clock=lambda: T,
        wake=lambda: None,
        egress=Egress(resolver=public_dns),
    )
    app = FastAPI()
    install_problem_handlers(app)
    admin_api.install_error_handler(app)
    app.include_router(admin_api.router)
    app.state.resources = res
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://publisher") as client:
        created = await client.post(
            "/subscriptions", json={"url": "https://hooks.tccd.edu/x"}, headers=AUTH
        )
        sub_id = created.json()["id"]
        async with res.sessions() as session:
            sub = await session.get(Subscription, sub_id)
            assert sub is not None
            data = PublicDepartmentPresence(department="reference", online=1, changed_at=T)
            event = new_event(data, source="unit").model_copy(update={"time": T})
            payload = event.model_dump_json()
            parsed = AnyEvent.model_validate_json(payload)
            await deliveries.enqueue(session, sub=sub, event=parsed, payload=payload, now=T)
            await session.commit()
            key = deliveries.delivery_id(sub_id, event.id)
            await deliveries.record(
                session, key, now=T, status=500, error="http 5xx", state=deliveries.DEAD
            )
        yield client, res, sub_id
    await engine.dispose()


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2025-01-01T00:00:00-06:00", "9999-12-31T23:59:59-06:00", "to"),
        ("0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00Z", "from"),
    ],
)
async def test_a_window_beyond_the_calendar_in_utc_is_a_problem(
    api: tuple[httpx.AsyncClient, Resources, str], start: str, end: str, field: str
) -> None:
    client, _, sub_id = api
    answer = await client.post(
        f"/subscriptions/{sub_id}/replay", json={"from": start, "to": end}, headers=AUTH
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_the_last_second_of_the_calendar_in_utc_is_a_window_end(
    api: tuple[httpx.AsyncClient, Resources, str],
) -> None:
    client, _, sub_id = api
    answer = await client.post(
        f"/subscriptions/{sub_id}/replay",
        json={"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"},
        headers=AUTH,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"requeued": 1}


async def test_binding_a_time_beyond_the_calendar_in_utc_does_not_crash(
    api: tuple[httpx.AsyncClient, Resources, str],
) -> None:
    _, res, sub_id = api
    late = datetime.fromisoformat("9999-12-31T23:59:59-06:00")
    early = datetime.fromisoformat("0001-01-01T00:00:00+01:00")
    assert (as_utc(late), as_utc(early)) == (UTC_MAX, UTC_MIN)
    async with res.sessions() as session:
        count = await deliveries.replay(
            session, subscription_id=sub_id, start=early, end=late, now=T + timedelta(hours=1)
        )
        await session.commit()
    assert count == 1


async def test_an_unexpected_error_is_a_problem_without_its_text() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    install_http_guards(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 for patron ana.gomez@my.tccd.edu")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        answer = await client.get("/boom")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json() == {"type": "about:blank", "title": "Internal Server Error", "status": 500}
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
