"""Signed webhooks to a real local receiver: delivery, retry after 500s, dead letter, replay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.publisher.subscriptions import new_secret
from shared.events import Action, Channel, InteractionReceived, Patron, Priority, RoutingDecided
from shared.topics import INTERACTIONS, ROUTING
from tests.eventually import eventually
from tests.servers import serving

from .conftest import Running, StartPublisher, produce

pytestmark = pytest.mark.timeout(240)


@dataclass
class Receiver:
    """A campus system's endpoint: verifies every request, answers as each path is told."""

    url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)
    """path -> how many requests per webhook-id to answer 500 (-1: all)."""
    verified: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tries: dict[tuple[str, str], int] = field(default_factory=dict)
    rejected: int = 0
    hang: dict[str, asyncio.Event] = field(default_factory=dict)
    """path -> an event each request waits for before it is answered."""
    waiting: dict[str, int] = field(default_factory=dict)
    """path -> requests waiting now."""

    async def handle(self, request: Request) -> Response:
        path = request.path_params["name"]
        body = await request.body()
        if path in self.hang:
            self.waiting[path] = self.waiting.get(path, 0) + 1
            try:
                await self.hang[path].wait()
            finally:
                self.waiting[path] -= 1
        try:
            payload = Webhook(self.secrets[path]).verify(body, dict(request.headers))
        except (WebhookVerificationError, KeyError):
            self.rejected += 1
            return Response(status_code=401)
        msg_id = request.headers["webhook-id"]
        tried = self.tries[(path, msg_id)] = self.tries.get((path, msg_id), 0) + 1
        limit = self.fail_first.get(path, 0)
        if limit < 0 or tried <= limit:
            return Response(status_code=500)
        self.verified.setdefault(path, []).append({"webhook-id": msg_id, **payload})
        return Response(status_code=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP server on a port the OS picked."""
    rec = Receiver()
    app = Starlette(routes=[Route("/hooks/{name}", rec.handle, methods=["POST"])])
    async with serving(app, what="the webhook receiver") as url:
        rec.url = f"{url}/hooks"
        yield rec


async def subscribe(
    client: httpx.AsyncClient, pub: Running, rec: Receiver, name: str, **body: Any
) -> str:
    secret = new_secret()
    rec.secrets[name] = secret
    response = await client.post(
        f"{pub.url}/subscriptions",
        headers=pub.auth,
        json={"url": f"{rec.url}/{name}", "secret": secret, **body},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def deliveries(client: httpx.AsyncClient, pub: Running, sub: str) -> list[dict[str, Any]]:
    response = await client.get(f"{pub.url}/subscriptions/{sub}/deliveries", headers=pub.auth)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


async def send_conversation(bootstrap: str, dept: str) -> tuple[str, datetime]:
    cid = f"conv-{uuid.uuid4()}"
    now = datetime.now(UTC)
    await produce(
        bootstrap,
        INTERACTIONS.name,
        InteractionReceived(
            interaction_id=f"i-{cid}",
            conversation_id=cid,
            channel=Channel.EMAIL,
            provider="mime",
            provider_message_id=f"<{cid}@x>",
            patron=Patron(contact="pat@example.edu"),
            text="Where is my book?",
            received_at=now,
            department_hint=dept,
        ),
        key=cid,
    )
    await produce(
        bootstrap,
        ROUTING.name,
        RoutingDecided(
            decision_id=f"d-{cid}",
            interaction_id=f"i-{cid}",
            conversation_id=cid,
            channel=Channel.EMAIL,
            action=Action.TRANSFER,
            department=dept,
            priority=Priority.NORMAL,
            overnight=False,
            policy_version="t",
            decided_at=now,
        ),
        key=cid,
    )
    return cid, now


async def test_signed_delivery_retry_dead_letter_and_replay(
    kafka_bootstrap: str, start_publisher: StartPublisher, receiver: Receiver
) -> None:
    dept = f"dept-{uuid.uuid4().hex[:8]}"
    pub = await start_publisher(departments=[dept])
    routed = "edu.tccd.refdesk.public.conversation.routed.v1"
    async with httpx.AsyncClient(timeout=10) as client:
        ok = await subscribe(client, pub, receiver, "ok", departments=[dept])
        flaky = await subscribe(
            client, pub, receiver, "flaky", departments=[dept], event_types=[routed]
        )
        down = await subscribe(client, pub, receiver, "down", departments=[dept])
        elsewhere = await subscribe(client, pub, receiver, "elsewhere", departments=["tutoring"])
        receiver.fail_first.update({"flaky": 1, "down": -1})
        _cid, sent_at = await send_conversation(kafka_bootstrap, dept)

        async def ok_has_both() -> bool:
            return len(receiver.verified.get("ok", [])) >= 2

        await eventually(ok_has_both, "both events at the 'ok' receiver")
        types = sorted(e["type"] for e in receiver.verified["ok"])
        assert types == [
            "edu.tccd.refdesk.public.conversation.routed.v1",
            "edu.tccd.refdesk.public.interaction.received.v1",
        ]
        assert all(
            e["data"].get("department", e["data"].get("department_hint")) == dept
            for e in receiver.verified["ok"]
        )

        async def flaky_delivered() -> list[dict[str, Any]]:
            rows = await deliveries(client, pub, flaky)
            return rows if rows and rows[0]["state"] == "delivered" else []

        [row] = await eventually(
            flaky_delivered, "the flaky delivery delivered"
        )  # only the type it asked for
        assert row["attempts"] == 2 and row["last_status"] == 204
        assert [e["type"] for e in receiver.verified["flaky"]] == [routed]
        assert receiver.verified["flaky"][0]["webhook-id"] == row["id"]

        async def down_dead() -> list[dict[str, Any]]:
            rows = await deliveries(client, pub, down)
            return rows if len(rows) == 2 and all(r["state"] == "dead" for r in rows) else []

        dead = await eventually(down_dead, "both deliveries to 'down' dead")
        assert dead and all(r["attempts"] == 3 and r["last_status"] == 500 for r in dead)
        assert "down" not in receiver.verified
        dead_only = await client.get(
            f"{pub.url}/subscriptions/{down}/deliveries", params={"state": "dead"}, headers=pub.auth
        )
        assert len(dead_only.json()) == 2

        receiver.fail_first["down"] = 0  # the receiver is fixed; the admin replays the range
        window = {
            "from": (sent_at - timedelta(minutes=1)).isoformat(),
            "to": (sent_at + timedelta(minutes=1)).isoformat(),
        }
        response = await client.post(
            f"{pub.url}/subscriptions/{down}/replay", json=window, headers=pub.auth
        )
        assert response.status_code == 202 and response.json() == {"requeued": 2}

        async def down_delivered() -> bool:
            rows = await deliveries(client, pub, down)
            return all(r["state"] == "delivered" for r in rows)

        await eventually(down_delivered, "the replayed deliveries delivered")
        assert sorted(e["webhook-id"] for e in receiver.verified["down"]) == sorted(
            r["id"] for r in dead
        )
        assert await deliveries(client, pub, elsewhere) == []
        assert receiver.rejected == 0
        assert len(await deliveries(client, pub, ok)) == 2


async def test_a_receiver_that_does_not_answer_delays_no_other_subscription(
    kafka_bootstrap: str, start_publisher: StartPublisher, receiver: Receiver
) -> None:
    """/hang answers nothing until released (its attempts would time out after a minute);
    /fast gets all thirty events meanwhile, and /hang gets them once it answers."""
    dept = f"dept-{uuid.uuid4().hex[:8]}"
    pub = await start_publisher(
        webhook_timeout_s=60,
        webhook_lease_s=120,
        webhook_concurrency=16,
        webhook_subscription_concurrency=4,
        departments=[dept],
    )
    receiver.hang["hang"] = asyncio.Event()
    async with httpx.AsyncClient(timeout=10) as client:
        hang = await subscribe(client, pub, receiver, "hang", departments=[dept])
        await subscribe(client, pub, receiver, "fast", departments=[dept])
        for _ in range(15):
            await send_conversation(kafka_bootstrap, dept)

        await eventually(
            lambda: len(receiver.verified.get("fast", [])) == 30,
            "all thirty events at /fast while /hang answers nothing",
            timeout=45,
        )
        await eventually(lambda: receiver.waiting.get("hang") == 4, "four requests at /hang")
        assert {r["attempts"] for r in await deliveries(client, pub, hang)} == {0}

        receiver.hang["hang"].set()
        await eventually(
            lambda: len({e["webhook-id"] for e in receiver.verified.get("hang", [])}) == 30,
            "all thirty events at /hang once it answers",
        )


async def test_a_rotated_secret_signs_beside_the_old_one_until_its_grace_ends(
    kafka_bootstrap: str, start_publisher: StartPublisher, receiver: Receiver
) -> None:
    """The admin rotates a subscription's secret: the campus system, still on the old secret,
    verifies every delivery until it installs the new one (each carries both signatures for
    the grace), then verifies with the new one; a rotation with no grace (a leaked secret)
    leaves only the new signature at once. (A rotation had replaced the secret at once, so
    every delivery failed until the subscriber learned the new one.)"""
    dept = f"dept-{uuid.uuid4().hex[:8]}"
    pub = await start_publisher(departments=[dept])
    async with httpx.AsyncClient(timeout=10) as client:
        sub = await subscribe(client, pub, receiver, "rotating", departments=[dept])
        old = receiver.secrets["rotating"]
        rotated = await client.post(f"{pub.url}/subscriptions/{sub}/secret", headers=pub.auth)
        assert rotated.status_code == 200, rotated.text
        new, until = rotated.json()["secret"], rotated.json()["previous_secret_until"]
        assert new != old and until is not None
        hours = (datetime.fromisoformat(until) - datetime.now(UTC)).total_seconds() / 3600
        assert 23.9 < hours <= 24

        async def delivered(count: int) -> bool:
            return len(receiver.verified.get("rotating", [])) >= count

        await send_conversation(kafka_bootstrap, dept)  # the receiver still verifies with old
        await eventually(lambda: delivered(2), "two deliveries verified with the old secret")
        receiver.secrets["rotating"] = new  # the subscriber installs the new secret
        await send_conversation(kafka_bootstrap, dept)
        await eventually(lambda: delivered(4), "two more verified with the new secret")
        assert receiver.rejected == 0

        cut = await client.post(
            f"{pub.url}/subscriptions/{sub}/secret", headers=pub.auth, json={"grace_h": 0}
        )
        assert cut.status_code == 200 and cut.json()["previous_secret_until"] is None
        receiver.secrets["rotating"] = new  # still on the secret just replaced: refused now
        await send_conversation(kafka_bootstrap, dept)
        await eventually(lambda: receiver.rejected >= 1, "a delivery signed only with the newest")
        receiver.secrets["rotating"] = cut.json()["secret"]
        await eventually(lambda: delivered(6), "the refused deliveries retried and verified")
