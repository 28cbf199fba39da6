"""The router consuming from and producing to the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from faststream.kafka import KafkaBroker

from services.router.app import create_app
from services.router.settings import DEV_ADMIN_TOKEN, RouterSettings
from shared.events import (
    Channel,
    ConversationClosed,
    InteractionReceived,
    Patron,
    PresenceChanged,
    StaffStatus,
    new_event,
)
from shared.kafka import build_broker, publish
from tests.eventually import eventually
from tests.kafka_helpers import caught_up, collect, read_to_end

OPEN_HOURS = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Chicago
OVERNIGHT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # a Wednesday, 02:00 in Chicago


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    broker = build_broker(
        RouterSettings(kafka_bootstrap=kafka_bootstrap), client_id="test-producer"
    )
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
def settings(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> RouterSettings:
    return RouterSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        run_dir=tmp_path,
        router_group=f"router-test-{uuid.uuid4().hex[:8]}",
        topic_partitions=1,
    )


@pytest.fixture
async def router(settings: RouterSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://router",
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},  # POST /explain's
        ) as c:
            yield c


def interaction(
    text: str,
    *,
    channel: Channel = Channel.SMS,
    when: datetime = OPEN_HOURS,
    conversation: str | None = None,
    contact: str = "+18175550123",
) -> InteractionReceived:
    conversation = conversation or f"c-{uuid.uuid4().hex[:12]}"
    return InteractionReceived(
        interaction_id=str(uuid.uuid4()),
        conversation_id=conversation,
        channel=channel,
        provider="test",
        provider_message_id=str(uuid.uuid4()),
        patron=Patron(contact=contact),
        text=text,
        received_at=when,
    )


async def send(
    producer: KafkaBroker,
    event: InteractionReceived | ConversationClosed | PresenceChanged,
    *,
    topic: str = "refdesk.interactions",
    key: str | None = None,
) -> None:
    key = key or getattr(event, "conversation_id", None) or event.staff_id
    await publish(
        producer,
        topic,
        event,
        key=key,
        source="test",
        event_id=getattr(event, "interaction_id", None),
        subject=key,
    )


def of(conversation: str):
    return lambda e: e.get("subject") == conversation


async def test_a_renewal_by_text_is_transferred_with_a_handoff(
    router: httpx.AsyncClient, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    msg = interaction("can i renew my book online")
    await send(producer, msg)
    decisions = await collect(
        kafka_bootstrap,
        "refdesk.routing",
        where=of(msg.conversation_id),
        until=lambda f: len(f) >= 1,
    )
    commands = await collect(
        kafka_bootstrap,
        "refdesk.notifications",
        where=of(msg.conversation_id),
        until=lambda f: len(f) >= 1,
    )
    decision = decisions[0]["data"]
    assert (decision["action"], decision["department"]) == ("transfer", "nw-circulation")
    assert decision["interaction_id"] == msg.interaction_id and decision["policy_version"]
    assert decision["rules"] and decision["overnight"] is False
    assert [c["data"]["kind"] for c in commands] == ["handoff"]
    assert (
        commands[0]["data"]["channel"] == "sms"
        and commands[0]["data"]["recipient"] == "+18175550123"
    )


async def test_a_crisis_alerts_care_and_gives_resources_even_overnight(
    router: httpx.AsyncClient, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    msg = interaction("im going to hurt myself tonight", when=OVERNIGHT)
    await send(producer, msg)
    commands = await collect(
        kafka_bootstrap,
        "refdesk.notifications",
        where=of(msg.conversation_id),
        until=lambda f: len(f) >= 2,
    )
    kinds = {c["data"]["kind"]: c["data"] for c in commands}
    assert set(kinds) == {"crisis_alert", "crisis_resources"}
    assert (
        kinds["crisis_alert"]["priority"] == "urgent"
        and kinds["crisis_alert"]["channel"] == "email"
    )
    assert kinds["crisis_alert"]["context"]["care_report_url"].startswith("https://cm.maxient.com/")


async def test_a_redelivered_interaction_yields_one_decision(
    router: httpx.AsyncClient, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    msg = interaction("How do I cite a government report in APA 7?", channel=Channel.CHAT)
    await send(producer, msg)
    await send(producer, msg)
    follow = interaction("thanks!", channel=Channel.CHAT, conversation=msg.conversation_id)
    await send(
        producer, follow
    )  # same partition, after the duplicate: once it is decided, both were read
    decisions = await collect(
        kafka_bootstrap,
        "refdesk.routing",
        where=of(msg.conversation_id),
        until=lambda f: any(d["data"]["interaction_id"] == follow.interaction_id for d in f),
    )
    assert sorted(d["data"]["interaction_id"] for d in decisions) == sorted(
        [msg.interaction_id, follow.interaction_id]
    )


async def test_nobody_online_turns_a_live_transfer_into_a_ticket(
    router: httpx.AsyncClient, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    staff = f"staff-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    await send(
        producer,
        PresenceChanged(
            staff_id=staff, status=StaffStatus.ONLINE, departments=["reference"], changed_at=now
        ),
        topic="refdesk.presence",
        key=staff,
    )
    await asyncio.sleep(2)  # the router's presence view is eventually consistent by design
    msg = interaction("need a biology tutor appointment")
    await send(producer, msg)
    decisions = await collect(
        kafka_bootstrap,
        "refdesk.routing",
        where=of(msg.conversation_id),
        until=lambda f: len(f) >= 1,
    )
    decision = decisions[0]["data"]
    assert decision["department"] == "tutoring" and decision["fallback"]


async def test_poison_goes_to_the_dlq_and_the_router_keeps_going(
    router: httpx.AsyncClient, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    marker = uuid.uuid4().hex
    await producer.publish(
        f"not json {marker}".encode(), topic="refdesk.interactions", key=marker.encode()
    )
    msg = interaction("where are the statistics books")
    await send(producer, msg)
    dead = await collect(
        kafka_bootstrap,
        "refdesk.interactions.dlq",
        until=lambda f: len(f) >= 1,
        where=lambda e: marker in e.get("data", {}).get("value", ""),
    )
    assert "not a CloudEvent" in dead[0]["data"]["reason"]
    decisions = await collect(
        kafka_bootstrap,
        "refdesk.routing",
        where=of(msg.conversation_id),
        until=lambda f: len(f) >= 1,
    )
    assert decisions[0]["data"]["action"] == "answer"


async def test_a_year_9999_interaction_is_dead_lettered_and_the_crisis_behind_it_escalates(
    router: httpx.AsyncClient, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    """An outside probe's year-9999 email overflowed the router's date arithmetic, was retried
    forever, and the crisis texts behind it on the partition never reached the CARE Team."""
    conversation = f"c-{uuid.uuid4().hex[:12]}"
    far = interaction("where are the statistics books", conversation=conversation)
    body = new_event(far, source="test", event_id=far.interaction_id).model_dump_json()
    body = body.replace(OPEN_HOURS.strftime("%Y-%m-%dT%H:%M:%SZ"), "9999-12-31T23:59:59Z")
    assert "9999-12-31" in body
    await producer.publish(body.encode(), topic="refdesk.interactions", key=conversation.encode())
    crisis = interaction(
        "i have the pills here and i am going to take them all tonight", conversation=conversation
    )
    await send(producer, crisis)
    dead = await collect(
        kafka_bootstrap,
        "refdesk.interactions.dlq",
        until=lambda f: len(f) >= 1,
        where=lambda e: far.interaction_id in e.get("data", {}).get("value", ""),
    )
    assert "received_at" in dead[0]["data"]["reason"]
    decisions = await collect(
        kafka_bootstrap, "refdesk.routing", where=of(conversation), until=lambda f: len(f) >= 1
    )
    assert [d["data"]["action"] for d in decisions] == ["escalate_crisis"]


async def test_closing_an_sms_ticket_requests_one_survey_and_a_chat_none(
    router: httpx.AsyncClient,
    settings: RouterSettings,
    producer: KafkaBroker,
    kafka_bootstrap: str,
) -> None:
    sms, chat = f"c-{uuid.uuid4().hex[:10]}", f"c-{uuid.uuid4().hex[:10]}"
    for conversation, channel in ((sms, Channel.SMS), (chat, Channel.CHAT), (sms, Channel.SMS)):
        await send(
            producer,
            ConversationClosed(
                conversation_id=conversation,
                channel=channel,
                closed_at=datetime.now(UTC),
                patron_contact="+18175550123",
            ),
        )
    # the router commits past its input only once what it published was acknowledged
    await eventually(
        lambda: caught_up(kafka_bootstrap, settings.router_group, "refdesk.interactions"),
        "the router committed past the closings",
    )
    surveys = await read_to_end(
        kafka_bootstrap, "refdesk.notifications", where=lambda e: e.get("subject") in (sms, chat)
    )
    assert {s["subject"] for s in surveys} == {sms}
    assert len({s["data"]["idempotency_key"] for s in surveys}) == 1  # the notifier sends it once


async def test_explain_over_http(router: httpx.AsyncClient) -> None:
    answer = await router.post("/explain", json={"channel": "chat", "text": "I want to end it all"})
    assert answer.status_code == 200
    assert answer.json()["action"] == "escalate_crisis" and answer.json()["priority"] == "urgent"
    bad = await router.post("/explain", json={"channel": "fax", "text": "hi"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert "channel" in bad.json()["detail"]
