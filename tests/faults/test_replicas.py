"""Scale by replicas: every service runs as two processes on the shared broker and PostgreSQL,
ingest and status behind a round-robin balancer, and the desk works as one.

Webhooks go to either ingest replica (a conversation's messages alternate between them) and
every interaction is decided, answered and made public once; each replica of each service does
part of the work; a console's live stream on one status replica shows a note added through the
other, and a reply sent through the balancer reaches the patron once. Then each service's
first replica is stopped and started again while traffic flows, as a rolling upgrade does:
nothing lost, nothing doubled.

Runs where REFDESK_TEST_POSTGRES_URL names a server (.ci/run starts one): replicas share a
service's database, as compose's do.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.system import Postgres
from refdesk_cli.stack import Stack
from tests.eventually import eventually
from tests.faults import report
from tests.faults.balancer import Balancer
from tests.faults.conftest import ON_POSTGRES
from tests.faults.system import READY_S, SERVICES, System, ledger_summary, start_system
from tests.faults.test_short import assert_clean
from tests.faults.traffic import Progress, drive, flatten, make_traffic, settle
from tests.integration.ingest.conftest import fresh_phone, sms_form, twilio_headers
from tests.kafka_helpers import read_topic

pytestmark = [pytest.mark.short_faults, pytest.mark.timeout(900), *ON_POSTGRES]
ALL = (*SERVICES, "publisher")
ADMIN = {"Authorization": "Bearer dev-dkim-token"}  # sees every department's conversations
SUPERVISOR = {"Authorization": "Bearer dev-lokafor-token"}
PUBLIC_RECEIVED = "edu.tccd.refdesk.public.interaction.received.v1"
# What shows that a replica did its share: each service's own counter of the work it does.
WORK = {
    "ingest": ("refdesk_webhook_requests_total", {"outcome": "accepted"}),
    "router": ("refdesk_routing_decisions_total", {}),
    "notifier": ("refdesk_notifications_sent_total", {}),
    "status": ("refdesk_events_consumed_total", {}),
    "publisher": ("refdesk_public_events_total", {}),
}


@pytest.fixture
def pair(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The deployment with the publisher, and a second replica of every service (`extra[0]`):
    same databases, consumer groups and run folder, ports of their own."""
    system = start_system(
        Path(tmp_path_factory.mktemp("faults-replicas")),
        REFDESK_DATABASE_URL=postgres.database_url("replicas"),
    )
    try:
        system.stack.ports["publisher"] = 0
        system.stack.start("publisher")
        system.stack.wait_ready("publisher", timeout=READY_S)
        # scaled out: the second replicas join a running deployment
        twins = Stack(
            run_dir=system.stack.run_dir, env=system.stack.env, ports=dict.fromkeys(ALL, 0)
        )
        system.extra.append(twins)
        for name in ALL:
            twins.start(name)
        for name in ALL:
            twins.wait_ready(name, timeout=READY_S)
        yield system
    finally:
        system.stop()


def replicas(system: System, name: str) -> list[str]:
    return [system.stack.url(name), system.extra[0].url(name)]


async def work_done(client: httpx.AsyncClient, url: str, service: str) -> float:
    """The sum of the service's work counter on one replica, read from its /metrics."""
    metric, labels = WORK[service]
    text = (await client.get(f"{url}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metric and labels.items() <= sample.labels.items()
    )


@pytest.fixture
async def balanced(pair: System) -> AsyncIterator[dict[str, Balancer]]:
    """A balancer in front of ingest's replicas and one in front of status's."""
    lbs = {
        name: Balancer([pair.stack.ports[name], pair.extra[0].ports[name]])
        for name in ("ingest", "status")
    }
    for lb in lbs.values():
        await lb.start()
    try:
        yield lbs
    finally:
        for lb in lbs.values():
            await lb.stop()


async def next_event(lines: AsyncIterator[str]) -> tuple[str, dict[str, Any]]:
    """The next server-sent event (name, data), comments skipped."""
    name, data = "message", ""
    async for line in lines:
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data += line.split(":", 1)[1].strip()
        elif not line and data:
            return name, json.loads(data)
    raise AssertionError("the stream ended")


async def public_received(system: System) -> list[dict[str, Any]]:
    return [
        e
        for e in await read_topic(system.bootstrap, "refdesk.public")
        if e.get("type") == PUBLIC_RECEIVED
    ]


async def test_every_service_as_two_replicas_behind_a_balancer(
    pair: System, balanced: dict[str, Balancer]
) -> None:
    """One deployment for the three parts (a system of ten services is costly to start)."""
    await balanced_traffic(pair, balanced)
    await console_across_replicas(pair, balanced)
    await rolling_restart(pair, balanced)


async def balanced_traffic(pair: System, balanced: dict[str, Balancer]) -> None:
    """Traffic through the balancer: each interaction once, each replica a share of the work."""
    convs = make_traffic(300, sms_every=4)
    items = flatten(convs)
    await drive(pair, convs, base=balanced["ingest"].url, keepalive=False)
    outcome = await settle(pair, items, "two replicas of every service, balanced", timeout=240)
    report.add(outcome.row(), full=False)
    assert_clean(outcome)
    assert outcome.duplicated == 0
    assert Counter(balanced["ingest"].chosen).keys() == set(balanced["ingest"].backends)

    async def all_public() -> list[dict[str, Any]] | None:
        found = await public_received(pair)
        return found if len(found) >= len(items) else None

    public = await eventually(all_public, "every interaction on the public stream", timeout=120)
    assert len(public) == len(items)
    assert len({e["id"] for e in public}) == len(public)

    async with httpx.AsyncClient(timeout=10) as client:
        shares = {
            name: [await work_done(client, url, name) for url in replicas(pair, name)]
            for name in ALL
        }
    idle = {name: done for name, done in shares.items() if not all(done)}
    assert not idle, f"replicas that did no work: {idle}"


async def console_across_replicas(pair: System, balanced: dict[str, Balancer]) -> None:
    """A console's live stream on one status replica shows a note added through the other;
    the reply sent through the balancer reaches the patron once."""
    lb = balanced["status"]
    fresh = httpx.Limits(max_keepalive_connections=0)
    marker = uuid.uuid4().hex[:8]
    phone = fresh_phone()
    form = sms_form(f"how do i cite a youtube video in APA 7? {marker}", sender=phone)
    async with httpx.AsyncClient(base_url=balanced["ingest"].url, timeout=30) as ingest:
        texted_in = await ingest.post(
            "/webhooks/sms", content=urlencode(form).encode(), headers=twilio_headers(form)
        )
        assert texted_in.status_code < 300, texted_in.text
    async with httpx.AsyncClient(base_url=lb.url, timeout=30, limits=fresh) as client:

        async def placed() -> str | None:
            found = await client.get("/conversations", params={"contact": phone}, headers=ADMIN)
            rows = [row for row in found.json()["items"] if row["department"]]
            return rows[0]["conversation_id"] if rows else None

        # placed by the router: a reply sent before would meet its decision (409, rightly)
        cid = await eventually(placed, "the patron's text routed on the desk", timeout=60)
        lb.chosen.clear()  # the connections that follow: the stream's, then the note's
        async with client.stream("GET", "/console/events", headers=ADMIN) as stream:
            lines = stream.aiter_lines()
            assert (await next_event(lines))[0] == "ready"
            note = await client.post(
                f"/conversations/{cid}/notes", json={"text": f"note {marker}"}, headers=SUPERVISOR
            )
            assert note.status_code == 201, note.text
            reply = await client.post(
                f"/conversations/{cid}/replies", json={"text": f"reply {marker}"}, headers=ADMIN
            )
            assert reply.status_code == 202, reply.text
            while True:
                event, data = await asyncio.wait_for(next_event(lines), timeout=30)
                if event == "conversation" and data.get("what") == "note":
                    break
        assert data["conversation_id"] == cid
    stream_went, note_went = lb.chosen[0], lb.chosen[1]
    assert stream_went != note_went, "the note reached the stream's own replica"

    def texted() -> list[dict[str, str]]:
        return [r for r in pair.sms.requests if marker in r.get("Body", "")]

    await eventually(texted, "the reply reaches the SMS API", timeout=60)
    await asyncio.sleep(3)  # a second copy, if any, would come within the lanes' next turns
    assert len(texted()) == 1


async def rolling_restart(pair: System, balanced: dict[str, Balancer]) -> None:
    """Each service's first replica stopped with SIGTERM and started again under traffic."""
    convs = make_traffic(600, sms_every=4)
    items = flatten(convs)
    restarted: list[str] = []

    async def roll(progress: Progress) -> None:
        for i, name in enumerate(ALL):
            await eventually(
                lambda n=60 * (i + 1): progress.answered >= n, "answers", every=0.05, timeout=300
            )
            await asyncio.to_thread(pair.stack.stop, name, sig=signal.SIGTERM, timeout=30)
            await asyncio.to_thread(pair.stack.start, name)
            await asyncio.to_thread(pair.stack.wait_ready, name, READY_S)
            restarted.append(name)

    await drive(pair, convs, base=balanced["ingest"].url, keepalive=False, during=roll)
    outcome = await settle(pair, items, "rolling restart of two replicas each", timeout=300)
    report.add(outcome.row(), full=False)
    assert restarted == list(ALL)
    assert_clean(outcome)
    assert outcome.duplicated == 0, "a graceful stop behind the balancer doubled a notification"
    assert (await ledger_summary(pair))["pending"] == 0
