"""Staff replies against the real broker: an email reply reaches the SMTP server threaded under
the patron's message (and the patron's answer to it comes back into the same conversation
through ingest), an SMS reply reaches the Twilio API as written; each outcome is announced on
refdesk.deliveries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker

from services.notifier.messages import make_message_id
from services.notifier.segments import sms_segments
from shared.events import (
    Channel,
    NotificationKind,
    NotificationRequested,
    StaffReplyContext,
    derived_id,
)
from shared.topics import DELIVERIES, INTERACTIONS, NOTIFICATIONS
from tests.eventually import eventually
from tests.kafka_helpers import Event, caught_up, collect, read_to_end

from ..ingest.conftest import ingest_settings, mailgun_form
from ..ingest.conftest import running as ingest_running
from ..notifier_adapters.notifier_fakes import FakeTwilio
from .conftest import Configure
from .notifier_env import SmtpRelay, running, send, settled

SID, TOKEN, FROM = "AC" + "2" * 32, "test-twilio-token", "+18175550100"


def staff_reply(
    channel: Channel, recipient: str, conversation_id: str, **context: Any
) -> NotificationRequested:
    """The command the status service publishes for a staff reply."""
    reply = StaffReplyContext(reply_id=uuid.uuid4().hex, staff_id="jdoe", **context)
    return NotificationRequested(
        idempotency_key=derived_id(reply.reply_id, "staff_reply"),
        kind=NotificationKind.STAFF_REPLY,
        channel=channel,
        recipient=recipient,
        conversation_id=conversation_id,
        context=reply.model_dump(mode="json"),
        requested_at=datetime.now(UTC),
    )


async def outcome_of(bootstrap: str, key: str) -> Event:
    """The one NotificationDelivered announced for a command."""
    found = await collect(
        bootstrap,
        DELIVERIES.name,
        until=lambda f: len(f) >= 1,
        where=lambda e: e.get("data", {}).get("idempotency_key") == key,
        timeout=30,
    )
    assert len(found) == 1, found
    assert found[0]["type"] == "edu.tccd.refdesk.notification.delivered.v1"
    data: Event = found[0]["data"]
    return data


async def interaction(bootstrap: str, message_id: str) -> Event:
    """The InteractionReceived ingest published for an email."""
    found = await collect(
        bootstrap,
        INTERACTIONS.name,
        until=lambda f: len(f) >= 1,
        where=lambda e: e.get("data", {}).get("provider_message_id") == message_id,
        timeout=30,
    )
    assert found, f"no interaction for {message_id}"
    data: Event = found[0]["data"]
    return data


def patrons_answer(reply: EmailMessage, text: str) -> dict[str, str]:
    """What the patron's mail client posts (through Mailgun) when they answer the reply."""
    form = mailgun_form(subject=f"Re: {reply['Subject']}", text=text)
    form["In-Reply-To"] = str(reply["Message-ID"])
    form["References"] = f"{reply['References']} {reply['Message-ID']}"
    return form


async def test_an_email_reply_threads_both_ways(
    configure: Configure,
    relay: SmtpRelay,
    producer: KafkaBroker,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    ingest = ingest_settings(
        kafka_bootstrap, f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}", tmp_path / "ingest"
    )
    original = mailgun_form(subject="Lost library book", text="I lost Calculus 8th ed.")
    patron_id = original["Message-Id"].strip("<>")
    async with ingest_running(ingest) as desk_inbox:
        assert (await desk_inbox.post("/webhooks/email", data=original)).status_code == 200
        asked = await interaction(kafka_bootstrap, patron_id)

        settings = await configure()
        cmd = staff_reply(
            Channel.EMAIL,
            asked["patron"]["contact"],
            asked["conversation_id"],
            text="Hi Ana,\n\nNo bill yet: bring it to NW Circulation and we will check it in.",
            subject=asked["subject"],
            in_reply_to=patron_id,
            references=[patron_id],
            staff_name="Jo Doe",
        )
        message_id = make_message_id(cmd.idempotency_key, settings.message_id_domain)
        async with running(settings) as notifier:
            await send(producer, cmd)
            await send(producer, cmd)  # a double click: the same key
            await eventually(lambda: relay.handler.with_id(message_id), "the reply at SMTP")
            await eventually(  # both commands consumed: the ledger below is final
                lambda: caught_up(kafka_bootstrap, settings.notifier_group, NOTIFICATIONS.name),
                "the notifier committed past both commands",
            )
            await settled(notifier, sent=1)
        [mail] = relay.handler.with_id(message_id)
        outcome = await outcome_of(kafka_bootstrap, cmd.idempotency_key)
        announced = await read_to_end(  # the notifier has stopped: nothing more can come
            kafka_bootstrap,
            DELIVERIES.name,
            where=lambda e: e.get("data", {}).get("idempotency_key") == cmd.idempotency_key,
        )
        assert len(announced) == 1  # one outcome for the double-clicked reply

        answer = patrons_answer(mail, "Thanks! I will bring it tomorrow.")
        assert (await desk_inbox.post("/webhooks/email", data=answer)).status_code == 200
        answered = await interaction(kafka_bootstrap, answer["Message-Id"].strip("<>"))

    assert mail["Subject"] == "Re: Lost library book"
    assert mail["In-Reply-To"] == f"<{patron_id}>" and mail["References"] == f"<{patron_id}>"
    assert mail["To"] == "ana.gomez@my.tccd.edu"
    assert mail["From"].addresses[0].addr_spec == "askdesk@tccd.edu"
    assert mail.get_content_type() == "text/plain" and "Auto-Submitted" not in mail
    body = str(mail.get_content()).replace("\r\n", "\n")  # as it came off the wire
    assert "bring it to NW Circulation" in body and "\n-- \nJo Doe\n" in body
    assert len(relay.handler.messages) == 1

    assert outcome["state"] == "sent" and outcome["reason"] is None
    assert outcome["message_id"] == message_id and outcome["subject"] == mail["Subject"]
    assert outcome["text"] == body.strip() and outcome["kind"] == "staff_reply"
    assert outcome["conversation_id"] == asked["conversation_id"]

    assert answered["conversation_id"] == asked["conversation_id"]  # back in the same ticket
    assert answered["text"] == "Thanks! I will bring it tomorrow."


async def test_an_sms_reply_reaches_the_twilio_api_as_written(
    configure: Configure, twilio: FakeTwilio, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    settings = await configure(
        sms_api_base_url=twilio.base_url,
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        sms_from=FROM,
    )
    text = "Hi Ana, your laptop loan is renewed until Friday. Bring the charger back with it."
    cmd = staff_reply(Channel.SMS, "+18175550123", f"sms-{uuid.uuid4().hex[:12]}", text=text)
    async with running(settings) as notifier:
        await send(producer, cmd)
        await eventually(lambda: twilio.requests, "the Messages API request")
        await settled(notifier, sent=1)
    [request] = twilio.requests
    assert request["form"] == {"To": "+18175550123", "From": FROM, "Body": text}
    assert request["idempotency"] == cmd.idempotency_key
    outcome = await outcome_of(kafka_bootstrap, cmd.idempotency_key)
    assert outcome["state"] == "sent" and outcome["text"] == text
    assert outcome["segments"] == sms_segments(text)[1] == 1
    assert outcome["message_id"].startswith("SM") and outcome["subject"] is None
