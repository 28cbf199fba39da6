"""The status service against a real Kafka broker: presence, queue, transfer, close, DLQ, and
the carrier's report on a text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from status_kafka_helpers import queue_row, send, send_raw, wait_for_record

from shared.events import (
    Action,
    Channel,
    DeliveryState,
    InteractionReceived,
    NotificationDelivered,
    NotificationKind,
    Patron,
    Priority,
    RoutingDecided,
    SmsStatusReported,
)
from shared.topics import DELIVERIES, INTERACTIONS, NOTIFICATIONS, PRESENCE, ROUTING, SMS_REPORTS
from tests.eventually import eventually

pytestmark = pytest.mark.timeout(240)
TOKEN = "dev-jnguyen-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SUPERVISOR = "dev-lokafor-token"
"""Sees every department (a reference librarian no longer sees a conversation moved away)."""


def interaction(cid: str, channel: Channel = Channel.SMS) -> InteractionReceived:
    return InteractionReceived(
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=channel,
        provider="twilio",
        provider_message_id=f"SM-{cid}",
        patron=Patron(contact="+18175550123"),
        text="Can I renew my laptop loan?",
        received_at=datetime.now(UTC),
    )


def decision(cid: str, *, overnight: bool, channel: Channel = Channel.SMS) -> RoutingDecided:
    return RoutingDecided(
        decision_id=f"d-{cid}",
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=channel,
        action=Action.ANSWER,
        department="reference",
        priority=Priority.HIGH if overnight else Priority.NORMAL,
        overnight=overnight,
        policy_version="test",
        decided_at=datetime.now(UTC),
    )


async def routed_conversation(status_kafka: str, status_server: str) -> tuple[str, dict[str, Any]]:
    """Publish an interaction and its routing; wait for the queue row."""
    cid = f"conv-{uuid.uuid4()}"
    await send(status_kafka, INTERACTIONS.name, interaction(cid), key=cid)
    await send(status_kafka, ROUTING.name, decision(cid, overnight=True), key=cid)

    async def routed() -> dict[str, Any] | None:
        row = await queue_row(status_server, cid, TOKEN)
        return row if row and row["department"] == "reference" and row["overnight"] else None

    return cid, await eventually(routed, f"{cid} routed to reference in the queue")


async def test_ready_and_status_change_publishes_presence(
    status_kafka: str,
    status_server: str,
) -> None:
    async with httpx.AsyncClient(base_url=status_server) as client:

        async def ready() -> bool:
            return bool((await client.get("/readyz")).json()["ready"])

        # the broker's ping can miss its 2 s on a loaded machine right after start: ready
        # within the wait, not necessarily at the first look
        await eventually(ready, "status ready", timeout=30)
        response = await client.put(
            "/staff/jnguyen/status", headers=AUTH, json={"status": "Away", "note": "desk walk"}
        )
        assert response.status_code == 200
    value, key = await wait_for_record(
        status_kafka,
        PRESENCE.name,
        lambda v, _k: v["data"]["staff_id"] == "jnguyen" and v["data"]["status"] == "Away",
    )
    assert key == "jnguyen" and value["type"] == "edu.tccd.refdesk.presence.changed.v1"
    assert value["data"]["changed_by"] == "jnguyen" and "name" not in value["data"]


async def test_queue_fills_from_interaction_and_routing_events(
    status_kafka: str,
    status_server: str,
) -> None:
    _cid, row = await routed_conversation(status_kafka, status_server)
    assert (row["channel"], row["priority"], row["assignee"]) == ("sms", "high", None)
    assert row["age_s"] >= 0


async def test_transfer_publishes_routing_and_handoff(
    status_kafka: str,
    status_server: str,
) -> None:
    cid, _row = await routed_conversation(status_kafka, status_server)
    async with httpx.AsyncClient(base_url=status_server) as client:
        response = await client.post(
            f"/queue/{cid}/transfer",
            headers=AUTH,
            json={"department": "nw-circulation", "note": "renewal"},
        )
        assert response.status_code == 200
    routing, key = await wait_for_record(
        status_kafka,
        ROUTING.name,
        lambda v, _k: (
            v.get("data", {}).get("conversation_id") == cid
            and v["data"].get("decided_by") == "jnguyen"
        ),
    )
    assert key == cid and routing["data"]["action"] == "transfer"
    assert routing["data"]["department"] == "nw-circulation"
    handoff, _ = await wait_for_record(
        status_kafka,
        NOTIFICATIONS.name,
        lambda v, _k: (
            v.get("data", {}).get("conversation_id") == cid and v["data"].get("kind") == "handoff"
        ),
    )
    assert handoff["data"]["recipient"] == "+18175550123"

    async def moved() -> dict[str, Any] | None:  # our own decision comes back idempotently
        row = await queue_row(status_server, cid, SUPERVISOR)
        return row if row and row["department"] == "nw-circulation" else None

    await eventually(moved, f"{cid} moved to nw-circulation")


async def test_close_publishes_conversation_closed(status_kafka: str, status_server: str) -> None:
    cid, _row = await routed_conversation(status_kafka, status_server)
    async with httpx.AsyncClient(base_url=status_server) as client:
        response = await client.post(f"/queue/{cid}/close", headers=AUTH)
        assert response.status_code == 200
    closed, key = await wait_for_record(
        status_kafka,
        INTERACTIONS.name,
        lambda v, _k: (
            v["type"] == "edu.tccd.refdesk.conversation.closed.v1"
            and v["data"]["conversation_id"] == cid
        ),
    )
    assert key == cid
    assert (closed["data"]["closed_by"], closed["data"]["patron_contact"]) == (
        "jnguyen",
        "+18175550123",
    )
    assert await queue_row(status_server, cid, TOKEN) is None


async def test_poison_message_goes_to_the_dlq(status_kafka: str, status_server: str) -> None:
    key = f"poison-{uuid.uuid4()}"
    await send_raw(status_kafka, INTERACTIONS.name, b"{not json", key=key)
    letter, _ = await wait_for_record(
        status_kafka,
        INTERACTIONS.dlq_name,
        lambda v, k: k == key and v["data"]["consumer_group"].startswith("test-status-"),
    )
    assert letter["data"]["reason"].startswith("not a CloudEvent")


async def test_the_carriers_report_on_a_text_reaches_its_transcript_line(
    status_kafka: str, status_server: str
) -> None:
    cid, _row = await routed_conversation(status_kafka, status_server)
    sid = "SM" + uuid.uuid4().hex
    now = datetime.now(UTC)
    # the report comes first, on its own topic; the notifier's announcement after it
    await send(
        status_kafka,
        SMS_REPORTS.name,
        SmsStatusReported(provider_id=sid, status="undelivered", error_code=30007, reported_at=now),
        key=sid,
    )
    await send(
        status_kafka,
        DELIVERIES.name,
        NotificationDelivered(
            idempotency_key=f"reply-{cid}",
            conversation_id=cid,
            kind=NotificationKind.STAFF_REPLY,
            channel=Channel.SMS,
            state=DeliveryState.SENT,
            text="NE is open until 9 tonight.",
            message_id=sid,
            segments=1,
            at=now - timedelta(seconds=3),
        ),
        key=cid,
    )

    async def reported() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=status_server) as client:
            view = (await client.get(f"/conversations/{cid}", headers=AUTH)).json()
        line = next((m for m in view["messages"] if m["id"] == f"reply-{cid}"), None)
        undelivered = line is not None and line["delivery"]["state"] == "undelivered"
        return line if undelivered else None

    line = await eventually(reported, f"{cid}'s text reported undelivered")
    assert line["delivery"]["reason"] == "filtered by the carrier"
