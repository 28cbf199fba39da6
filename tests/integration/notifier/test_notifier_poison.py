"""Poison messages on refdesk.notifications go to the DLQ with their reason, never retried,
and the consumer keeps going."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker

from services.notifier.messages import make_message_id
from shared.events import NotificationKind, PresenceChanged, StaffStatus, new_event

from .conftest import Configure
from .notifier_env import (
    SmtpRelay,
    command,
    dead_letters,
    eventually,
    running,
    send,
    send_raw,
    settled,
)

NOTIFICATION_TYPE = "edu.tccd.refdesk.notification.requested.v1"


def envelope(event_type: str, data: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "refdesk/test",
            "type": event_type,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        }
    ).encode()


async def test_poison_messages_are_dead_lettered_and_the_consumer_keeps_going(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    settings = await configure()
    valid = command()
    invalid_data = command().model_dump(mode="json")
    del invalid_data["recipient"]
    invalid_data["kind"] = "carrier_pigeon"
    presence = new_event(
        PresenceChanged(
            staff_id="s-1",
            status=StaffStatus.ONLINE,
            departments=["library"],
            changed_at=datetime.now(UTC),
        ),
        source="refdesk/test",
    )
    bad_context = command(
        NotificationKind.CIRCULATION_EMAIL,
        recipient="circdesk@tccd.edu",
        context={"channel": "sms"},
    )  # no question, no conversation_ref
    poison = {
        "p-not-json": b"this is {not json",
        "p-not-cloudevent": b'{"hello": "world"}',  # JSON, no content-type header
        "p-json-scalar": b"42",
        "p-json-header-not-json": b"<xml>not json</xml>",  # sent as application/json
        "p-latin1": "caf\u00e9 \u00bfqu\u00e9?".encode("latin-1"),
        "p-unknown-type": envelope("edu.tccd.refdesk.nonsense.v1", {"x": 1}),
        "p-invalid-data": envelope(NOTIFICATION_TYPE, invalid_data),
        "p-wrong-event": presence.model_dump_json().encode(),
    }
    keys = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in poison}
    async with running(settings) as client:
        for name, body in poison.items():
            headers = {"content-type": "application/json"} if "header" in name else None
            await send_raw(producer, body, key=keys[name], headers=headers)
        await send(producer, bad_context)
        await send(producer, valid)
        message_id = make_message_id(valid.idempotency_key, settings.message_id_domain)
        await eventually(lambda: relay.handler.with_id(message_id), "the valid command's email")
        await settled(client, sent=1, dead=1)

    letters = await dead_letters(kafka_bootstrap, settings.notifier_group, count=len(poison) + 1)
    by_key = {e["_key"]: e["data"] for e in letters}
    assert len(letters) == len(by_key) == len(poison) + 1  # each once
    reasons = {name: by_key[keys[name]]["reason"] for name in poison}
    assert reasons["p-not-json"].startswith("not a CloudEvent")
    for name in ("p-not-cloudevent", "p-json-scalar", "p-json-header-not-json", "p-latin1"):
        assert reasons[name].startswith("not a CloudEvent"), (name, reasons[name])
    assert reasons["p-unknown-type"] == "unknown event type 'edu.tccd.refdesk.nonsense.v1'"
    assert reasons["p-invalid-data"].startswith(f"invalid {NOTIFICATION_TYPE} data")
    assert "recipient" in reasons["p-invalid-data"] and "kind" in reasons["p-invalid-data"]
    assert reasons["p-wrong-event"] == "not a notification command: PresenceChanged"
    for name, body in poison.items():
        letter = by_key[keys[name]]
        assert letter["value"] == body.decode("utf-8", "replace")
        assert letter["topic"] == "refdesk.notifications"
        assert letter["offset"] >= 0
    context_letter = by_key[bad_context.conversation_id]
    assert context_letter["reason"].startswith("permanent: invalid context for 'circulation_email'")
    assert "question" in context_letter["reason"]
    assert "circdesk@tccd.edu" not in context_letter["reason"]  # no student data in reasons
    assert len(relay.handler.messages) == 1
