"""Ingest against the real broker: a large email with a photo is published (described, within
the broker's message size limit), a webhook URL with a trailing slash is answered, a patron's
reply naming only the Message-ID of refdesk's email joins its conversation, and a ticket tag
threads only from an address of its conversation whose checks at the mail provider did not
fail."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

from services.ingest.replies import PARTY_NAMESPACE, SENT_NAMESPACE, party_key, sent_key
from services.ingest.settings import IngestSettings
from shared.events import (
    Channel,
    NotificationKind,
    NotificationRequested,
    StaffReplyContext,
    derived_id,
    message_id_local,
)
from shared.topics import NOTIFICATIONS
from tests.eventually import eventually
from tests.integration.ingest.conftest import (
    fresh_phone,
    mailgun_form,
    publish_as,
    running,
    sms_form,
    twilio_headers,
)
from tests.kafka_helpers import read_to_end

TOPIC = "refdesk.interactions"


def by_message(provider_id: str):  # type: ignore[no-untyped-def]
    return lambda e: e.get("data", {}).get("provider_message_id") == provider_id


async def test_a_several_megabyte_email_with_a_photo_is_published_described(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    message_id = uuid.uuid4().hex
    text = "There is a hold on my account; the notice is in the photo. " * 40_000  # 2.4 MB
    form = mailgun_form(message_id=message_id, text=text, subject="Hold notice")
    photo = b"\xff\xd8\xff\xe0" + b"\x07" * 3_000_000
    async with running(settings) as client:
        answer = await client.post(
            "/webhooks/email",
            data={**form, "attachment-count": "1"},
            files={"attachment-1": ("IMG_2041.jpg", photo, "image/jpeg")},
        )
    assert answer.status_code == 200, answer.text
    events = await read_to_end(
        kafka_bootstrap, TOPIC, where=by_message(f"{message_id}@mail.example.edu")
    )
    [event] = events
    attachments = event["data"]["attachments"]
    assert attachments[0] == {
        "name": "IMG_2041.jpg",
        "size": 3_000_004,
        "content_type": "image/jpeg",
    }
    assert attachments[1]["name"] == "email-text-beyond-100000-characters.txt"
    assert event["data"]["text"].startswith("There is a hold on my account")


async def test_a_twilio_url_with_a_trailing_slash_is_answered_not_redirected(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    form = sms_form("configured with a slash", sender=fresh_phone())
    async with running(settings) as client:
        answer = await client.post(
            "/webhooks/sms/",
            content=urlencode(form),
            headers=twilio_headers(form, path="/webhooks/sms/"),
        )
    assert answer.status_code == 200, answer.text
    assert len(await read_to_end(kafka_bootstrap, TOPIC, where=by_message(form["MessageSid"]))) == 1


async def test_a_reply_to_a_staff_email_joins_its_conversation_by_in_reply_to_alone(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    """Status asks the notifier (on refdesk.notifications) to send a staff reply; ingest reads
    the command and remembers the Message-ID the notifier gives it, bound to the patron; the
    patron's answer carries only In-Reply-To and threads into the conversation."""
    first = mailgun_form(message_id=uuid.uuid4().hex, text="I lost a library book")
    patron = "ana.gomez@my.tccd.edu"  # mailgun_form's sender, normalised
    async with running(settings) as client:
        store = client._transport.app.state.ingest.store  # type: ignore[attr-defined]
        assert (await client.post("/webhooks/email", data=first)).status_code == 200
        [opened] = await read_to_end(
            kafka_bootstrap, TOPIC, where=by_message(first["Message-Id"].strip("<>"))
        )
        conversation = opened["data"]["conversation_id"]
        reply_id = str(uuid.uuid4())
        command = NotificationRequested(
            idempotency_key=derived_id(reply_id, "staff_reply"),
            kind=NotificationKind.STAFF_REPLY,
            channel=Channel.EMAIL,
            recipient=patron,
            conversation_id=conversation,
            context=StaffReplyContext(
                reply_id=reply_id, staff_id="lib-7", text="Please bring it Friday."
            ).model_dump(mode="json"),
            requested_at=datetime.now(UTC),
        )
        await publish_as(settings, "refdesk/status", NOTIFICATIONS.name, command, key=conversation)
        local = message_id_local(command.idempotency_key)
        await eventually(
            lambda: store.seen_conversation(SENT_NAMESPACE, sent_key(local, patron)),
            "ingest to remember the Message-ID of the staff reply",
        )
        answer = mailgun_form(
            message_id=uuid.uuid4().hex,
            text="Thanks, I will.",
            subject="Re: Lost book",
            in_reply_to=f"<{local}@refdesk.local>",
        )
        forged = {
            **mailgun_form(
                message_id=uuid.uuid4().hex,
                text="let me into that ticket",
                in_reply_to=f"<{local}@refdesk.local>",
            ),
            "from": "Mallory <mallory@example.org>",
            "sender": "mallory@example.org",
        }
        assert (await client.post("/webhooks/email", data=answer)).status_code == 200
        assert (await client.post("/webhooks/email", data=forged)).status_code == 200
    [threaded] = await read_to_end(
        kafka_bootstrap, TOPIC, where=by_message(answer["Message-Id"].strip("<>"))
    )
    [elsewhere] = await read_to_end(
        kafka_bootstrap, TOPIC, where=by_message(forged["Message-Id"].strip("<>"))
    )
    assert threaded["data"]["conversation_id"] == conversation
    assert elsewhere["data"]["conversation_id"] != conversation


async def test_a_ticket_tag_threads_only_from_an_address_of_its_conversation(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    """The patron's own reply under the tag joins the conversation, and so does the tagged reply
    of an address refdesk emailed in it (learnt from refdesk.notifications); the same tag from
    another address starts a new conversation."""
    patron = "ana.gomez@my.tccd.edu"  # mailgun_form's sender, normalised
    converted = f"sms-{uuid.uuid4().hex[:18]}"  # an SMS conversation continued by email
    first = mailgun_form(message_id=uuid.uuid4().hex, text="I lost a library book")
    async with running(settings) as client:
        store = client._transport.app.state.ingest.store  # type: ignore[attr-defined]
        assert (await client.post("/webhooks/email", data=first)).status_code == 200
        [opened] = await read_to_end(
            kafka_bootstrap, TOPIC, where=by_message(first["Message-Id"].strip("<>"))
        )
        conversation = opened["data"]["conversation_id"]
        command = NotificationRequested(
            idempotency_key=derived_id(converted, "convert-to-email"),
            kind=NotificationKind.STAFF_REPLY,
            channel=Channel.EMAIL,
            recipient="Ana Gomez <Ana.Gomez@my.tccd.edu>",
            conversation_id=converted,
            context=StaffReplyContext(
                reply_id=str(uuid.uuid4()), staff_id="lib-7", text="Let's continue by email."
            ).model_dump(mode="json"),
            requested_at=datetime.now(UTC),
        )
        await publish_as(settings, "refdesk/status", NOTIFICATIONS.name, command, key=converted)
        await eventually(
            lambda: store.seen_conversation(PARTY_NAMESPACE, party_key(converted, patron)),
            "ingest to remember the address refdesk emailed in the conversation",
        )
        tagged = [
            mailgun_form(message_id=uuid.uuid4().hex, subject=f"Re: [refdesk #{c}] Lost book")
            for c in (conversation, converted)
        ]
        forged = [
            {
                **mailgun_form(
                    message_id=uuid.uuid4().hex, subject=f"Re: [refdesk #{c}] let me in"
                ),
                "from": "Mallory <mallory@example.org>",
                "sender": "mallory@example.org",
            }
            for c in (conversation, converted)
        ]
        # the patron's own From, which Mailgun's SPF and DKIM checks failed
        spoofed = {
            **mailgun_form(message_id=uuid.uuid4().hex, subject=f"Re: [refdesk #{conversation}]"),
            "message-headers": json.dumps(
                [["X-Mailgun-Spf", "Fail"], ["X-Mailgun-Dkim-Check-Result", "Fail"]]
            ),
        }
        forged.append(spoofed)
        for form in (*tagged, *forged):
            assert (await client.post("/webhooks/email", data=form)).status_code == 200

    async def conversation_of(form: dict[str, str]) -> str:
        [event] = await read_to_end(
            kafka_bootstrap, TOPIC, where=by_message(form["Message-Id"].strip("<>"))
        )
        return str(event["data"]["conversation_id"])

    assert [await conversation_of(form) for form in tagged] == [conversation, converted]
    for form in forged:
        assert (await conversation_of(form)).startswith("email-")
        assert await conversation_of(form) != conversation
