"""The public stream against a real broker: projection, idempotent ids, presence, no PII."""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.publisher.projection import conversation_hash
from shared.events import (
    Action,
    Channel,
    ConversationClosed,
    InteractionReceived,
    Patron,
    PatronRole,
    PresenceChanged,
    Priority,
    RoutingDecided,
    StaffGuidance,
    StaffStatus,
    derived_id,
    new_event,
)
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING
from tests.kafka_helpers import collect, partitions

from .conftest import HASH_KEY, StartPublisher, produce

pytestmark = pytest.mark.timeout(240)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w-])(\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\w-])")
SEVEN_DIGITS = re.compile(r"(?<![\w-])\d{7}(?![\w-])")


def patron_data() -> dict[str, str]:
    """Student data unique to this run, so a leak can only come from this test's events."""
    tag = uuid.uuid4().hex[:6]
    return {
        "name": f"Zelda Quackenbush{tag}",
        "email": f"zq.{tag}@my.tccd.edu",
        "phone": f"+1817555{random.randint(1000, 9999)}",
        "tcc_id": str(random.randint(1_000_000, 9_999_999)),
        "text": f"my laptop charger {tag} is overdue and I feel awful",
        "staff": f"staff-{tag}",
    }


async def all_public_records(bootstrap: str) -> list[tuple[str, str]]:
    """Every (key, value) on refdesk.public right now, from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[tuple[str, str]] = []
    try:
        tps = await partitions(bootstrap, [PUBLIC.name])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out += [((r.key or b"").decode(), (r.value or b"").decode()) for r in records]
    finally:
        await consumer.stop()
    return out


async def test_public_stream_carries_the_events_and_no_student_data(
    kafka_bootstrap: str, start_publisher: StartPublisher
) -> None:
    dept = f"dept-{uuid.uuid4().hex[:8]}"
    await start_publisher(departments=[dept])  # a department the desk added (isolates the test)
    pii = patron_data()
    cid = f"conv-{uuid.uuid4()}"
    now = datetime.now(UTC)
    received = InteractionReceived(
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=Channel.SMS,
        provider="twilio",
        provider_message_id=f"SM{pii['tcc_id']}",
        received_at=now,
        patron=Patron(contact=pii["phone"], name=pii["name"], role=PatronRole.STUDENT),
        text=f"{pii['text']} - {pii['name']} {pii['tcc_id']} {pii['email']}",
        subject=f"Re: {pii['name']}",
        campus_hint="campus-nw",
        department_hint=dept,
    )
    routed = RoutingDecided(
        decision_id=f"d-{cid}",
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=Channel.SMS,
        action=Action.EMAIL_CIRCULATION,
        department=dept,
        priority=Priority.HIGH,
        overnight=True,
        policy_version="test",
        decided_at=now,
        handoff_text=f"{pii['name']}, circulation will email {pii['email']}",
        guidance=StaffGuidance(
            summary=pii["text"], extracted={"tcc_id": pii["tcc_id"], "patron_name": pii["name"]}
        ),
        decided_by=pii["staff"],
    )
    closed = ConversationClosed(
        conversation_id=cid,
        channel=Channel.SMS,
        closed_at=now,
        closed_by=pii["staff"],
        patron_contact=pii["email"],
        reason=f"answered for {pii['name']}",
    )
    ids = [
        await produce(kafka_bootstrap, INTERACTIONS.name, received, key=cid),
        await produce(kafka_bootstrap, ROUTING.name, routed, key=cid),
        await produce(kafka_bootstrap, INTERACTIONS.name, closed, key=cid),
    ]
    presence = PresenceChanged(
        staff_id=pii["staff"],
        status=StaffStatus.ONLINE,
        departments=[dept],
        campus="campus-nw",
        changed_at=now,
        changed_by=pii["staff"],
    )
    ids.append(await produce(kafka_bootstrap, PRESENCE.name, presence, key=pii["staff"]))
    expected = {derived_id(i, "public") for i in ids[:3]}
    # a count's id is derived from what it says (services/publisher/presence.py)
    expected.add(derived_id("presence", dept, "1", now.isoformat()))

    found = await collect(
        kafka_bootstrap,
        PUBLIC.name,
        where=lambda e: e["id"] in expected,
        until=lambda f: {e["id"] for e in f} >= expected,
        timeout=60,
    )
    by_type = {e["type"].split(".public.")[1]: e for e in found}
    assert set(by_type) == {
        "interaction.received.v1",
        "conversation.routed.v1",
        "conversation.closed.v1",
        "department.presence.v1",
    }
    digest = conversation_hash(cid, key=HASH_KEY)
    assert by_type["interaction.received.v1"]["data"] == {
        "conversation_hash": digest,
        "channel": "sms",
        "campus_hint": "campus-nw",
        "department_hint": dept,
        "received_at": now.isoformat().replace("+00:00", "Z"),
        "overnight": None,
        "automatic": False,
    }
    assert by_type["conversation.routed.v1"]["data"]["department"] == dept
    assert by_type["conversation.routed.v1"]["data"]["overnight"] is True
    assert by_type["conversation.closed.v1"]["data"]["reason"] is None  # free text dropped
    assert by_type["department.presence.v1"]["data"]["online"] == 1
    assert by_type["interaction.received.v1"]["_key"] == digest

    records = await all_public_records(kafka_bootstrap)
    assert records
    for key, value in records:
        text = key + " " + value
        for secret in (
            pii["name"],
            pii["email"],
            pii["phone"],
            pii["tcc_id"],
            pii["text"],
            pii["staff"],
            cid,
            "Quackenbush",
            pii["phone"][2:],
        ):
            assert secret not in text, f"{secret!r} leaked onto {PUBLIC.name}"
        assert not EMAIL.search(text), text
        assert not PHONE.search(text), text
        assert not SEVEN_DIGITS.search(text), text


async def test_a_redelivered_source_event_republishes_the_same_public_event(
    kafka_bootstrap: str, start_publisher: StartPublisher
) -> None:
    await start_publisher()
    cid = f"conv-{uuid.uuid4()}"
    event_id = str(uuid.uuid4())
    data = InteractionReceived(
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=Channel.CHAT,
        provider="chat",
        provider_message_id="m1",
        patron=Patron(),
        text="hours?",
        received_at=datetime.now(UTC),
    )
    body = new_event(data, source="tests/publisher", event_id=event_id).model_dump_json()
    for _ in range(2):  # the same source event, delivered twice
        await produce(kafka_bootstrap, INTERACTIONS.name, body.encode(), key=cid)
    public_id = derived_id(event_id, "public")
    found = await collect(
        kafka_bootstrap,
        PUBLIC.name,
        where=lambda e: e["id"] == public_id,
        until=lambda f: len(f) >= 2,
        timeout=60,
    )
    assert len(found) == 2
    first, second = ({k: v for k, v in e.items() if k != "_key"} for e in found)
    assert first == second  # same id, same time, same data: consumers de-duplicate by id


async def test_department_presence_counts_online_staff_without_naming_them(
    kafka_bootstrap: str, start_publisher: StartPublisher
) -> None:
    dept, other = f"dept-{uuid.uuid4().hex[:8]}", f"dept-{uuid.uuid4().hex[:8]}"
    await start_publisher(departments=[dept, other])
    now = datetime.now(UTC)
    steps = [  # (staff, status, departments) -> the counts we expect published
        ("a", StaffStatus.ONLINE, [dept, other]),
        ("b", StaffStatus.ONLINE, [dept]),
        ("a", StaffStatus.AWAY, [dept, other]),
        ("b", StaffStatus.OFFLINE, [dept]),
    ]
    tag = uuid.uuid4().hex[:6]
    for i, (staff, status, departments) in enumerate(steps):
        change = PresenceChanged(
            staff_id=f"{staff}-{tag}",
            status=status,
            departments=departments,
            changed_at=now.replace(microsecond=i),
        )
        await produce(kafka_bootstrap, PRESENCE.name, change, key=f"{staff}-{tag}")

    def ours(e: dict[str, Any]) -> bool:
        return e["type"].endswith("department.presence.v1") and e["data"]["department"] in {
            dept,
            other,
        }

    found = await collect(
        kafka_bootstrap, PUBLIC.name, where=ours, until=lambda f: len(f) >= 6, timeout=60
    )
    counts = [(e["data"]["department"], e["data"]["online"]) for e in found]
    assert [c for c in counts if c[0] == dept] == [(dept, 1), (dept, 2), (dept, 1), (dept, 0)]
    assert [c for c in counts if c[0] == other] == [(other, 1), (other, 0)]
    assert all(set(e["data"]) == {"department", "online", "changed_at"} for e in found)
    assert all(tag not in json.dumps(e) for e in found)


async def test_a_late_presence_change_is_counted_after_the_newest(
    kafka_bootstrap: str, start_publisher: StartPublisher
) -> None:
    """bo's Offline at 3 arrives before ana's Offline at 2: along the stream a department's
    times only grow, so the count with the latest time is the count now."""
    dept = f"dept-{uuid.uuid4().hex[:8]}"
    await start_publisher(departments=[dept])
    tag = uuid.uuid4().hex[:6]
    now = datetime.now(UTC).replace(microsecond=0)
    for staff, status, second in (
        ("ana", StaffStatus.ONLINE, 0),
        ("bo", StaffStatus.ONLINE, 1),
        ("bo", StaffStatus.OFFLINE, 3),
        ("ana", StaffStatus.OFFLINE, 2),
    ):
        change = PresenceChanged(
            staff_id=f"{staff}-{tag}",
            status=status,
            departments=[dept],
            changed_at=now + timedelta(seconds=second),
        )
        await produce(kafka_bootstrap, PRESENCE.name, change, key=f"{staff}-{tag}")

    def ours(e: dict[str, Any]) -> bool:
        return e["type"].endswith("department.presence.v1") and e["data"]["department"] == dept

    found = await collect(
        kafka_bootstrap, PUBLIC.name, where=ours, until=lambda f: len(f) >= 4, timeout=60
    )
    assert [e["data"]["online"] for e in found] == [1, 2, 1, 0]
    times = [datetime.fromisoformat(e["data"]["changed_at"]) for e in found]
    assert times == sorted(times) and len(set(times)) == 4
    assert [datetime.fromisoformat(e["time"]) for e in found] == times
    newest = max(found, key=lambda e: datetime.fromisoformat(e["data"]["changed_at"]))
    assert newest["data"]["online"] == 0


async def test_an_invalid_raw_message_goes_to_the_dlq_with_the_publisher_group(
    kafka_bootstrap: str, start_publisher: StartPublisher
) -> None:
    running = await start_publisher()
    marker = f"not-json-{uuid.uuid4().hex}"
    await produce(kafka_bootstrap, INTERACTIONS.name, marker.encode(), key=marker)
    letters = await collect(
        kafka_bootstrap,
        INTERACTIONS.dlq_name,
        where=lambda e: (
            e["data"]["key"] == marker
            and e["data"]["consumer_group"] == running.settings.projector_group
        ),
        until=lambda f: len(f) >= 1,
        timeout=60,
    )
    assert letters and "not a CloudEvent" in letters[0]["data"]["reason"]


async def test_ops_endpoints(start_publisher: StartPublisher) -> None:
    running = await start_publisher()
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "kafka": True,
            "database": True,
        }
        metrics = (await client.get("/metrics")).text
        assert "refdesk_webhook_attempts_total" in metrics
