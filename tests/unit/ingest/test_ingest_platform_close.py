"""The chat platform's `ticket.closed` of a text thread without the patron: the survey goes to
the thread's number, as a close made at the desk sends it (an outside audit's platform close
published `patron_contact: null`, and the router sent the patron no survey)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from test_ingest_http import chat_signed, data_of, serving, sms_form, twilio_signed

from services.ingest.store import IngestStore
from tests.fakes import FakeBroker


def closed(conversation_id: str, channel: str, **extra: object) -> bytes:
    data = {"conversation_id": conversation_id, "channel": channel, "closed_by": "platform"}
    event = {"type": "ticket.closed", "timestamp": datetime.now(UTC).isoformat(), "data": data}
    event["data"].update(extra)  # type: ignore[union-attr]
    return json.dumps(event).encode()


async def test_a_platform_close_of_a_text_thread_names_its_number(
    tmp_path: Path, broker: FakeBroker, store: IngestStore
) -> None:
    async with serving(tmp_path, broker, store) as client:
        form = sms_form("can i renew my book")
        texted = await client.post(
            "/webhooks/sms", data=form, headers=twilio_signed("/webhooks/sms", form)
        )
        assert texted.status_code == 200, texted.text
        conversation = data_of(broker)[-1]["conversation_id"]
        for body in (closed(conversation, "sms"), closed("sms-unknown-thread", "sms")):
            answer = await client.post("/webhooks/chat", content=body, headers=chat_signed(body))
            assert answer.status_code == 200, answer.text
        named = {"patron": {"phone": "+18175550141"}}
        body = closed(conversation, "sms", **named)
        await client.post("/webhooks/chat", content=body, headers=chat_signed(body))
    closes = [d for d in data_of(broker) if "closed_at" in d]
    assert [(c["conversation_id"], c["patron_contact"]) for c in closes] == [
        (conversation, form["From"]),
        ("sms-unknown-thread", None),  # not a thread ingest keeps: nobody to name
        (conversation, "+18175550141"),  # the platform's own word stands
    ]


async def test_a_platform_close_sends_a_blocked_sender_no_survey(
    tmp_path: Path, broker: FakeBroker, store: IngestStore
) -> None:
    """A sender staff blocked gets nothing automatic: the platform's close of their thread
    neither thanks them with a survey (the desk's own close already did not)."""
    async with serving(tmp_path, broker, store) as client:
        form = sms_form("answer me")
        await client.post("/webhooks/sms", data=form, headers=twilio_signed("/webhooks/sms", form))
        conversation = data_of(broker)[-1]["conversation_id"]
        other = sms_form("can i renew my book")  # another number
        await client.post(
            "/webhooks/sms", data=other, headers=twilio_signed("/webhooks/sms", other)
        )
        renewal = data_of(broker)[-1]["conversation_id"]
        await store.block(form["From"], reason="threats to staff", added_by="mgarcia")
        for body in (closed(conversation, "sms"), closed(renewal, "sms")):
            answer = await client.post("/webhooks/chat", content=body, headers=chat_signed(body))
            assert answer.status_code == 200, answer.text
    closes = [d for d in data_of(broker) if "closed_at" in d]
    assert [(c["conversation_id"], c["survey"]) for c in closes] == [
        (conversation, False),
        (renewal, True),
    ]
