"""The admin API on a real database (no broker): auth, subscriptions, delivery log, replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.publisher import admin_api, deliveries
from services.publisher.deps import Resources
from services.publisher.egress import Egress
from services.publisher.settings import PublisherSettings
from services.publisher.tables import Subscription
from shared.db import create_engine, migrate, session_factory
from shared.events import AnyEvent, PublicDepartmentPresence, new_event
from shared.http import PROBLEM, install_problem_handlers
from tests.fakes import secret_like

TOKEN = "unit-admin-token-0123456789abcdefghijkl"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T = datetime(2025, 12, 1, 15, tzinfo=UTC)
PUBLIC_IP = "93.184.216.34"
DNS = {
    "metadata.google.internal": ["169.254.169.254"],
    "intranet.tccd.edu": ["10.1.2.3"],
    "localhost": ["127.0.0.1", "::1"],
}


async def fake_dns(host: str, _port: int) -> list[str]:
    """Test names resolve without the network: the two above, any other to a public address."""
    return DNS.get(host, [PUBLIC_IP])


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    engine = create_engine(database_url)
    await migrate(engine, "publisher")
    woken: list[int] = []
    res = Resources(
        settings=PublisherSettings(
            env="production", admin_token=TOKEN, public_hash_key=secret_like("hash")
        ),
        sessions=session_factory(engine),
        clock=lambda: T,
        wake=lambda: woken.append(1),
        egress=Egress(resolver=fake_dns),
    )
    app = FastAPI()
    install_problem_handlers(app)
    admin_api.install_error_handler(app)
    app.include_router(admin_api.router)
    app.state.resources = res
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://publisher") as client:
        yield client, res
    await engine.dispose()


async def test_every_route_needs_the_admin_token(api: tuple[httpx.AsyncClient, Resources]) -> None:
    client, _ = api
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = await client.get("/subscriptions", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/event-types", headers=AUTH)).status_code == 200


async def test_subscription_lifecycle(api: tuple[httpx.AsyncClient, Resources]) -> None:
    client, _ = api
    body = {
        "url": "https://hooks.tccd.edu/refdesk",
        "departments": ["tutoring"],
        "event_types": ["edu.tccd.refdesk.public.conversation.routed.v1"],
    }
    created = await client.post("/subscriptions", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["secret"].startswith("whsec_") and sub["active"]
    listed = (await client.get("/subscriptions", headers=AUTH)).json()
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]
    patched = await client.patch(
        f"/subscriptions/{sub['id']}",
        headers=AUTH,
        json={"active": False, "campuses": ["campus-nw"]},
    )
    assert patched.json()["active"] is False and patched.json()["campuses"] == ["campus-nw"]
    rotated = await client.post(f"/subscriptions/{sub['id']}/secret", headers=AUTH)
    assert rotated.json()["secret"] != sub["secret"]
    # the old secret signs beside it for the default grace, shown on the subscription
    assert rotated.json()["previous_secret_until"] == (T + timedelta(hours=24)).isoformat()
    shown = (await client.get(f"/subscriptions/{sub['id']}", headers=AUTH)).json()
    assert shown["previous_secret_until"] == rotated.json()["previous_secret_until"]
    chosen = "whsec_" + "c2VjcmV0LWluc3RhbGxlZC1haGVhZC1vZi10aW1lLTEyMzQ="
    installed = await client.post(
        f"/subscriptions/{sub['id']}/secret", headers=AUTH, json={"secret": chosen, "grace_h": 2}
    )
    assert installed.json()["secret"] == chosen
    assert installed.json()["previous_secret_until"] == (T + timedelta(hours=2)).isoformat()
    for bad, field in (({"secret": "nope"}, "whsec_"), ({"grace_h": -1}, "grace_h")):
        refused = await client.post(f"/subscriptions/{sub['id']}/secret", headers=AUTH, json=bad)
        assert refused.status_code == 422 and field in refused.text, refused.text
    assert (await client.delete(f"/subscriptions/{sub['id']}", headers=AUTH)).status_code == 204
    missing = await client.get(f"/subscriptions/{sub['id']}", headers=AUTH)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://hooks.tccd.edu/x"}, "https"),  # production: https only
        (
            {"url": "https://h.tccd.edu/x", "event_types": ["edu.tccd.refdesk.public.nope.v1"]},
            "unknown event types",
        ),
        ({"url": "https://h.tccd.edu/x", "secret": "not-a-secret"}, "whsec_"),
        ({"url": "https://h.tccd.edu/x", "departments": ["Writing Center"]}, "departments"),
        # ids that would never match (an outside probe's subscription silently received nothing)
        ({"url": "https://h.tccd.edu/x", "departments": ["nope"]}, "unknown department 'nope'"),
        ({"url": "https://h.tccd.edu/x", "campuses": ["campus-mars"]}, "unknown campus"),
        ({"url": "https://[fec0::1]/"}, "site-local"),
        ({"url": "not a url"}, "url"),
        # the outside probe's SSRF targets (issue 13, finding 1)
        ({"url": "https://169.254.169.254/latest/meta-data/"}, "link-local"),
        ({"url": "https://metadata.google.internal/computeMetadata/v1/"}, "link-local"),
        ({"url": "https://10.0.0.1/"}, "private"),
        ({"url": "https://intranet.tccd.edu/hook"}, "private"),
        ({"url": "https://[::1]:8081/"}, "loopback"),
        ({"url": "https://2130706433/"}, "loopback"),
        ({"url": "https://0x7f.1/"}, "loopback"),
        ({"url": "https://[::ffff:127.0.0.1]/"}, "url refused"),
        ({"url": "https://user:pass@hooks.tccd.edu/"}, "credentials"),
        ({"url": "https://localhost:8084/queue"}, "loopback"),
    ],
)
async def test_invalid_subscriptions_are_problems(
    api: tuple[httpx.AsyncClient, Resources], body: dict[str, Any], field: str
) -> None:
    client, _ = api
    response = await client.post("/subscriptions", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert field in response.json()["detail"]


async def test_delivery_log_and_replay(api: tuple[httpx.AsyncClient, Resources]) -> None:
    client, res = api
    sub_id = (
        await client.post("/subscriptions", json={"url": "https://h.tccd.edu/x"}, headers=AUTH)
    ).json()["id"]
    async with res.sessions() as session:
        sub = await session.get(Subscription, sub_id)
        assert sub is not None
        for hour, state in ((1, deliveries.DEAD), (2, deliveries.DELIVERED), (5, None)):
            data = PublicDepartmentPresence(
                department="reference", online=hour, changed_at=T + timedelta(hours=hour)
            )
            event = new_event(data, source="unit").model_copy(
                update={"time": T + timedelta(hours=hour)}
            )
            parsed = AnyEvent.model_validate_json(event.model_dump_json())
            assert await deliveries.enqueue(
                session, sub=sub, event=parsed, payload=event.model_dump_json(), now=T
            )
            assert not await deliveries.enqueue(
                session, sub=sub, event=parsed, payload=event.model_dump_json(), now=T
            )
            await session.commit()
            if state:
                key = deliveries.delivery_id(sub_id, event.id)
                await deliveries.record(
                    session, key, now=T, status=500, error="HTTP 500", state=state
                )
    log = (await client.get(f"/subscriptions/{sub_id}/deliveries", headers=AUTH)).json()
    assert [d["state"] for d in log] == ["pending", "delivered", "dead"]
    window = {
        "from": (T + timedelta(minutes=30)).isoformat(),
        "to": (T + timedelta(hours=3)).isoformat(),
    }
    replayed = await client.post(f"/subscriptions/{sub_id}/replay", json=window, headers=AUTH)
    assert replayed.status_code == 202 and replayed.json() == {"requeued": 2}
    log = (await client.get(f"/subscriptions/{sub_id}/deliveries", headers=AUTH)).json()
    assert {d["state"] for d in log} == {"pending"} and {d["attempts"] for d in log} == {0}
    backwards = await client.post(
        f"/subscriptions/{sub_id}/replay",
        headers=AUTH,
        json={"from": window["to"], "to": window["from"]},
    )
    assert backwards.status_code == 422
    assert (await client.get("/subscriptions/sub_x/deliveries", headers=AUTH)).status_code == 404
