"""Ingest's use cases through fakes of its ports: a broker that records what is published and
the real store on a SQLite file. Given these texts and emails, then these events, outcomes and
records (cosmicpython's handler tests, in milliseconds)."""

from __future__ import annotations

import uuid

import pytest

from services.ingest.providers.emails import EmailInbound
from services.ingest.providers.errors import ReplayedToken
from services.ingest.providers.twilio import SmsInbound
from services.ingest.service import BrokerUnavailable, Ingest
from services.ingest.store import IngestStore
from shared.topics import INTERACTIONS
from tests.fakes import FakeBroker

DESK = "+18175550100"


def text(body: str, *, sender: str | None = None) -> SmsInbound:
    return SmsInbound(
        message_sid="SM" + uuid.uuid4().hex,
        account_sid="AC" + "0" * 32,
        from_e164=sender or f"+1817555{uuid.uuid4().int % 10_000:04d}",
        to=DESK,
        body=body,
        num_media=0,
    )


async def test_a_text_is_published_keyed_by_its_new_conversation(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    sms = text("can i renew my book")
    assert await ingest.accept_sms(sms) == "accepted"
    [(topic, key, event)] = broker.published
    assert topic == INTERACTIONS.name
    assert key == event["data"]["conversation_id"] and key.startswith("sms-")
    assert event["data"]["text"] == "can i renew my book"
    assert event["data"]["patron"]["contact"] == sms.from_e164
    assert await store.is_seen("twilio", sms.message_sid)


async def test_a_redelivered_text_is_a_duplicate_and_publishes_nothing(
    ingest: Ingest, broker: FakeBroker
) -> None:
    sms = text("where is the library")
    await ingest.accept_sms(sms)
    assert await ingest.accept_sms(sms) == "duplicate"
    assert len(broker.published) == 1


async def test_texts_from_one_number_share_a_conversation_until_it_closes(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    sender = "+18175550177"
    await ingest.accept_sms(text("hi", sender=sender))
    await ingest.accept_sms(text("are you there", sender=sender))
    first, second = (e["data"]["conversation_id"] for _, _, e in broker.published)
    assert first == second
    await store.close_conversation(first)
    await ingest.accept_sms(text("new question", sender=sender))
    assert broker.published[-1][2]["data"]["conversation_id"] != first


async def test_a_blocked_number_is_published_flagged_for_the_crisis_net(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    sms = text("help", sender="+18175550166")
    await store.block(sms.from_e164, reason="abuse", added_by="admin")
    assert await ingest.accept_sms(sms) == "blocked"
    assert broker.published[0][2]["data"]["blocked"] is True


async def test_a_broker_failure_answers_unavailable_and_a_retry_publishes(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    sms = text("can i renew my book")
    broker.down = True
    with pytest.raises(BrokerUnavailable):
        await ingest.accept_sms(sms)
    assert not await store.is_seen("twilio", sms.message_sid)
    broker.down = False
    assert await ingest.accept_sms(sms) == "accepted"
    assert len(broker.published) == 1


async def test_nothing_is_accepted_before_the_broker_is_connected(ingest: Ingest) -> None:
    ingest.connected = False
    with pytest.raises(BrokerUnavailable):
        await ingest.accept_sms(text("hello"))


async def test_an_email_reply_joins_its_thread_and_a_repeat_is_a_duplicate(
    ingest: Ingest, broker: FakeBroker
) -> None:
    def email(message_id: str, *, in_reply_to: str | None = None) -> EmailInbound:
        return EmailInbound(
            message_id=message_id,
            sender_email="patron@example.edu",
            sender_name="Pat Ron",
            recipient="askus@tccd.edu",
            subject="Renewal",
            text="Can I renew my book?",
            in_reply_to=in_reply_to,
        )

    first = email(f"{uuid.uuid4()}@example.edu")
    assert await ingest.accept_email(first, provider="mailgun") == "accepted"
    reply = email(f"{uuid.uuid4()}@example.edu", in_reply_to=first.message_id)
    assert await ingest.accept_email(reply, provider="mailgun") == "accepted"
    assert await ingest.accept_email(reply, provider="mailgun") == "duplicate"
    conversations = [e["data"]["conversation_id"] for _, _, e in broker.published]
    assert len(conversations) == 2 and conversations[0] == conversations[1]


async def test_a_mailgun_token_binds_to_its_first_message_and_a_replay_is_refused(
    ingest: Ingest, broker: FakeBroker
) -> None:
    def email(message_id: str) -> EmailInbound:
        return EmailInbound(
            message_id=message_id,
            sender_email="patron@example.edu",
            sender_name=None,
            recipient="askus@tccd.edu",
            subject="Hours",
            text="When do you open?",
        )

    first = email(f"{uuid.uuid4()}@example.edu")
    assert await ingest.accept_mailgun(first, token="tok-1") == "accepted"
    assert await ingest.accept_mailgun(first, token="tok-1") == "duplicate"  # Mailgun retrying
    with pytest.raises(ReplayedToken):
        await ingest.accept_mailgun(email(f"{uuid.uuid4()}@example.edu"), token="tok-1")
    assert len(broker.published) == 1
