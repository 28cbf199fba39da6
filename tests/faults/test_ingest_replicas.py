"""Several ingest replicas on one database: a webhook delivered to each is one event.

In the fault suite (`make test-faults`): two replicas per test; the store's unique claims that
make this hold are tested in the fast tier (tests/unit/ingest/test_ingest_store.py)."""

from __future__ import annotations

import asyncio
import json
import uuid

from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import (
    fresh_phone,
    post_sms,
    running,
    signed,
    sms_form,
)
from tests.kafka_helpers import settle

TOPIC = "refdesk.interactions"


def by_message(provider_id: str):  # type: ignore[no-untyped-def]
    return lambda e: e.get("data", {}).get("provider_message_id") == provider_id


async def test_a_retry_that_reaches_the_other_replica_is_not_published_again(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    sms = sms_form("is the writing center open?", sender=fresh_phone())
    conversation = f"chat-{uuid.uuid4().hex[:12]}"
    chat = json.dumps(
        {
            "type": "chat.message",
            "timestamp": "2026-11-28T15:00:00Z",
            "data": {
                "conversation_id": conversation,
                "message_id": "m1",
                "text": "Where is the printer?",
            },
        }
    ).encode()
    chat_headers = {**signed(chat), "content-type": "application/json"}
    async with running(settings) as first, running(settings) as second:
        answers = [
            await post_sms(first, sms),
            await post_sms(second, sms),
            await first.post("/webhooks/chat", content=chat, headers=chat_headers),
            await second.post("/webhooks/chat", content=chat, headers=chat_headers),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert answers[3].json() == {"status": "duplicate"}
    assert len(await settle(kafka_bootstrap, TOPIC, by_message(sms["MessageSid"]))) == 1
    chats = await settle(kafka_bootstrap, TOPIC, lambda e: e.get("subject") == conversation)
    assert len(chats) == 1


async def test_simultaneous_deliveries_to_two_replicas_carry_one_event_id(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    sms = sms_form("can i renew online?", sender=fresh_phone())
    async with running(settings) as first, running(settings) as second:
        answers = await asyncio.gather(post_sms(first, sms), post_sms(second, sms))
    assert [a.status_code for a in answers] == [200, 200]
    events = await settle(kafka_bootstrap, TOPIC, by_message(sms["MessageSid"]))
    # Both replicas may pass the seen-keys check before either records it; the event id is
    # derived from the MessageSid, so every copy is the same event and consumers drop repeats.
    assert len({e["id"] for e in events}) == 1
    assert 1 <= len(events) <= 2
