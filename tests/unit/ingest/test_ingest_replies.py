"""A patron's email reply threads by the Message-ID of the email refdesk sent them, and only
from the address refdesk sent it to (a forged In-Reply-To starts a new conversation)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.ingest.providers.emails import EmailInbound
from services.ingest.replies import local_part, sent_entry, sent_key
from services.ingest.service import Ingest
from services.ingest.store import IngestStore
from services.notifier.messages import make_message_id
from shared.db import create_engine, migrate
from shared.events import (
    Channel,
    NotificationKind,
    NotificationRequested,
    StaffReplyContext,
    derived_id,
)
from tests.fakes import FakeBroker

PATRON = "ana.gomez@my.tccd.edu"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[IngestStore]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}")
    await migrate(engine, "ingest")
    store = IngestStore(engine, ttl=timedelta(days=7))
    await store.start()
    yield store
    await store.close()
    await engine.dispose()


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def ingest(broker: FakeBroker, store: IngestStore) -> Ingest:
    return Ingest(
        broker=broker,  # type: ignore[arg-type]
        store=store,
        publish_timeout_s=2.0,
        sms_window=timedelta(hours=24),
        connected=True,
    )


def staff_reply(conversation_id: str, *, to: str = PATRON) -> NotificationRequested:
    """The command status publishes when staff answer an email conversation."""
    reply_id = str(uuid.uuid4())
    context = StaffReplyContext(reply_id=reply_id, staff_id="lib-7", text="It is due Friday.")
    return NotificationRequested(
        idempotency_key=derived_id(reply_id, "staff_reply"),
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.EMAIL,
        recipient=to,
        conversation_id=conversation_id,
        context=context.model_dump(mode="json"),
        requested_at=datetime.now(UTC),
    )


def email(*, sender: str = PATRON, in_reply_to: str | None = None) -> EmailInbound:
    return EmailInbound(
        message_id=f"{uuid.uuid4().hex}@mail.example.edu",
        sender_email=sender,
        sender_name=None,
        recipient="askdesk@tccd.edu",
        subject="Re: Lost book",
        text="Thanks, I will bring it Friday.",
        in_reply_to=in_reply_to,
    )


def test_ingest_remembers_the_message_id_the_notifier_gives_the_email() -> None:
    reply = staff_reply("email-9")
    sent = make_message_id(reply.idempotency_key, "desk.tccd.edu")  # as the notifier sends it
    entry = sent_entry(reply)
    assert entry is not None
    assert entry[1] == sent_key(local_part(sent.strip("<>")), PATRON)


def test_only_emails_to_patrons_are_remembered() -> None:
    reply = staff_reply("email-1")
    assert sent_entry(reply) is not None
    assert sent_entry(reply.model_copy(update={"channel": Channel.SMS})) is None
    circulation = reply.model_copy(update={"kind": NotificationKind.CIRCULATION_EMAIL})
    assert sent_entry(circulation) is None


async def test_a_reply_naming_only_refdesks_message_id_joins_its_conversation(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    first = email()
    await ingest.accept_email(first, provider="mailgun")
    conversation = broker.published[0][2]["data"]["conversation_id"]
    command = staff_reply(conversation)
    entry = sent_entry(command)
    assert entry is not None
    await store.remember(entry)  # what ingest's consumer does with the command
    sent = make_message_id(command.idempotency_key, "refdesk.local").strip("<>")
    reply = email(sender=PATRON, in_reply_to=sent)
    assert await ingest.accept_email(reply, provider="mailgun") == "accepted"
    assert broker.published[-1][2]["data"]["conversation_id"] == conversation


async def test_a_forged_in_reply_to_from_another_address_starts_a_new_conversation(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    await ingest.accept_email(email(), provider="mailgun")
    conversation = broker.published[0][2]["data"]["conversation_id"]
    command = staff_reply(conversation)
    entry = sent_entry(command)
    assert entry is not None
    await store.remember(entry)
    sent = make_message_id(command.idempotency_key, "refdesk.local").strip("<>")
    forged = email(sender="someone.else@example.org", in_reply_to=sent)
    assert await ingest.accept_email(forged, provider="mailgun") == "accepted"
    assert broker.published[-1][2]["data"]["conversation_id"] != conversation
