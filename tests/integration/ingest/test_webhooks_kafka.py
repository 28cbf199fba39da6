"""Ingest against the real broker: every accepted webhook is on refdesk.interactions, once."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from services.ingest.settings import IngestSettings
from tests.eventually import eventually
from tests.integration.ingest.conftest import (
    fresh_phone,
    mailgun_form,
    post_sms,
    publish_as,
    running,
    signed,
    sms_form,
    twilio_headers,
)
from tests.kafka_helpers import caught_up, collect, read_to_end

TOPIC = "refdesk.interactions"
JSON = {"content-type": "application/json"}


def by_message(provider_id: str):
    return lambda e: e.get("data", {}).get("provider_message_id") == provider_id


async def test_sms_is_published_once_even_across_a_restart(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    form = sms_form("can i renew my book")
    async with running(settings) as client:
        first = await post_sms(client, form)
        again = await post_sms(client, form)
    assert first.status_code == 200 and again.status_code == 200
    assert first.headers["content-type"].startswith("text/xml") and "<Response/>" in first.text
    async with running(settings) as client:  # a new ingest process on the same database
        after_restart = await post_sms(client, form)
    assert after_restart.status_code == 200
    # every 2xx came after the broker's ack: the topic already holds all they published
    events = await read_to_end(kafka_bootstrap, TOPIC, where=by_message(form["MessageSid"]))
    assert len(events) == 1
    event = events[0]
    assert event["specversion"] == "1.0"
    assert event["type"] == "edu.tccd.refdesk.interaction.received.v1"
    assert event["data"]["channel"] == "sms"
    assert event["data"]["patron"]["contact"] == "+18175550123"
    assert event["_key"] == event["data"]["conversation_id"]


async def test_texts_from_one_number_share_a_conversation_until_it_closes(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    sender = f"+1817555{int(time.time() * 1000) % 10000:04d}"
    first, second, third = (
        sms_form(t, sender=sender) for t in ("hi", "renew my book pls", "thanks")
    )
    async with running(settings) as client:
        await post_sms(client, first)
        await post_sms(client, second)
        events = await collect(
            kafka_bootstrap,
            TOPIC,
            until=lambda f: len(f) >= 2,
            timeout=20,
            where=lambda e: (
                e["data"].get("provider_message_id") in (first["MessageSid"], second["MessageSid"])
            ),
        )
        conversation = {e["data"]["conversation_id"] for e in events}
        assert len(conversation) == 1
        closed = json.dumps(
            {
                "type": "ticket.closed",
                "timestamp": "2026-11-28T10:00:00Z",
                "data": {"conversation_id": conversation.pop(), "channel": "sms"},
            }
        ).encode()
        answer = await client.post(
            "/webhooks/chat",
            content=closed,
            headers={**signed(closed), "content-type": "application/json"},
        )
        assert answer.status_code == 200
        await post_sms(client, third)
    later = await collect(
        kafka_bootstrap,
        TOPIC,
        until=lambda f: len(f) >= 1,
        timeout=20,
        where=by_message(third["MessageSid"]),
    )
    assert later[0]["data"]["conversation_id"] != events[0]["data"]["conversation_id"]


async def test_bad_sms_requests_get_problem_details(settings: IngestSettings) -> None:
    form = sms_form()
    async with running(settings) as client:
        unsigned = await client.post(
            "/webhooks/sms",
            content=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        forged = await client.post(
            "/webhooks/sms",
            content=urlencode({**form, "Body": "changed"}),
            headers=twilio_headers(form),
        )
        as_json = await client.post("/webhooks/sms", json=form)
        no_sid = {k: v for k, v in form.items() if k != "MessageSid"}
        missing = await client.post(
            "/webhooks/sms", content=urlencode(no_sid), headers=twilio_headers(no_sid)
        )
        huge = await client.post(
            "/webhooks/sms",
            content=b"x" * (1024 * 1024 + 1),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert unsigned.status_code == 401
    assert forged.status_code == 403
    assert as_json.status_code == 415
    assert missing.status_code == 422 and missing.json()["field"] == "MessageSid"
    assert huge.status_code == 413
    for r in (unsigned, forged, as_json, missing, huge):
        assert r.headers["content-type"] == "application/problem+json"


async def test_mailgun_reply_joins_its_ticket_and_replays_are_refused(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    original = mailgun_form(message_id=uuid.uuid4().hex, text="I lost a library book")
    async with running(settings) as client:
        assert (await client.post("/webhooks/email", data=original)).status_code == 200
        retry = await client.post("/webhooks/email", data=original)  # Mailgun retrying
        forged = {
            **original,
            "Message-Id": f"<{uuid.uuid4().hex}@evil.example>",
            "stripped-text": "something else",
        }
        replay = await client.post("/webhooks/email", data=forged)  # token reused elsewhere
        parent = original["Message-Id"]
        reply = mailgun_form(
            in_reply_to=parent, text="The title is 1984\n\nOn Mon, Ana wrote:\n> I lost"
        )
        assert (await client.post("/webhooks/email", data=reply)).status_code == 200
        stale = mailgun_form(when=time.time() - 9 * 3600)  # beyond Mailgun's retry span
        too_old = await client.post("/webhooks/email", data=stale)
    assert retry.status_code == 200 and retry.json()["status"] == "duplicate"
    assert replay.status_code == 403
    assert too_old.status_code == 403
    ids = (original["Message-Id"].strip("<>"), reply["Message-Id"].strip("<>"))
    events = await collect(
        kafka_bootstrap,
        TOPIC,
        until=lambda f: len(f) >= 2,
        timeout=20,
        where=lambda e: e["data"].get("provider_message_id") in ids,
    )
    assert len(events) == 2
    assert events[0]["data"]["conversation_id"] == events[1]["data"]["conversation_id"]
    texts = {e["data"]["text"] for e in events}
    assert "The title is 1984" in texts  # quoted history removed
    assert all(e["data"]["patron"]["contact"] == "ana.gomez@my.tccd.edu" for e in events)


async def test_chat_events_are_verified_and_normalised(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    conversation = f"chat-{uuid.uuid4().hex[:12]}"
    body = json.dumps(
        {
            "type": "chat.message",
            "timestamp": "2026-11-28T15:00:00Z",
            "data": {
                "conversation_id": conversation,
                "message_id": "m1",
                "text": "How do I cite a report in APA?",
                "patron": {"email": "Student@My.TCCD.edu", "role": "student"},
            },
        }
    ).encode()
    unknown = json.dumps(
        {"type": "chat.exploded", "timestamp": "2026-11-28T15:00:00Z", "data": {}}
    ).encode()
    async with running(settings) as client:
        headers = {**signed(body), "content-type": "application/json"}
        ok = await client.post("/webhooks/chat", content=body, headers=headers)
        dup = await client.post("/webhooks/chat", content=body, headers=headers)
        bad_type = await client.post(
            "/webhooks/chat", content=unknown, headers={**signed(unknown), **JSON}
        )
        stale = await client.post(
            "/webhooks/chat", content=body, headers={**signed(body, when=time.time() - 600), **JSON}
        )
        unsigned = await client.post("/webhooks/chat", content=body, headers=JSON)
    assert ok.status_code == 200 and dup.status_code == 200
    assert bad_type.status_code == 422 and bad_type.json()["field"] == "type"
    assert stale.status_code in (401, 403) and unsigned.status_code == 401
    events = await read_to_end(
        kafka_bootstrap, TOPIC, where=lambda e: e.get("subject") == conversation
    )
    assert len(events) == 1
    assert events[0]["data"]["patron"] == {
        "contact": "student@my.tccd.edu",
        "name": None,
        "role": "student",
        "unverified": False,
    }


async def test_blocked_contacts_are_published_flagged_for_the_crisis_net(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    # issue 13, finding 4: a crisis from a blocked number must still reach the router, which
    # routes a blocked contact's message only if the crisis net fires (and drops the rest)
    phone = fresh_phone()
    form = sms_form("i want to kill myself tonight", sender=phone)
    async with running(settings) as client:
        blocked = await client.put(
            f"/admin/blocklist/{phone}",
            json={"reason": "abuse"},
            headers={"Authorization": "Bearer test-admin"},
        )
        assert blocked.status_code == 204
        answer = await post_sms(client, form)
    assert answer.status_code == 200
    events = await collect(
        kafka_bootstrap,
        TOPIC,
        where=by_message(form["MessageSid"]),
        until=lambda f: bool(f),
    )
    assert [e["data"]["blocked"] for e in events] == [True]
    assert events[0]["data"]["text"] == "i want to kill myself tonight"


async def test_unreachable_broker_gets_503_with_retry_after(
    database_url: str, tmp_path: Path
) -> None:
    from refdesk_cli.kafka_local import free_port
    from tests.integration.ingest.conftest import ingest_settings

    dead = ingest_settings(f"127.0.0.1:{free_port()}", database_url, tmp_path)
    async with running(dead, wait_connected=False) as client:
        started = time.monotonic()
        answer = await post_sms(client, sms_form())
        elapsed = time.monotonic() - started
        ready = await client.get("/readyz")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert elapsed < 5
    assert ready.status_code == 503


async def test_raw_mime_email_is_verified_and_published(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    message_id = f"{uuid.uuid4().hex}@mail.example.edu"
    raw = (
        f"From: Ana Gomez <Ana.Gomez@my.tccd.edu>\r\nTo: askdesk@tccd.edu\r\n"
        "Subject: Re: Study rooms\r\n"  # a reply: its quoted history is cut
        f"Message-ID: <{message_id}>\r\nDate: Tue, 24 Nov 2026 10:00:00 -0600\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Can I book a study room for Friday?\r\n\r\nOn Mon, Desk wrote:\r\n> Hello\r\n"
    ).encode()
    headers = {**signed(raw), "content-type": "message/rfc822"}
    async with running(settings) as client:
        ok = await client.post("/webhooks/email/mime", content=raw, headers=headers)
        tampered = await client.post("/webhooks/email/mime", content=raw + b"x", headers=headers)
    assert ok.status_code == 200, ok.text
    assert tampered.status_code == 403
    events = await collect(
        kafka_bootstrap, TOPIC, until=lambda f: len(f) >= 1, where=by_message(message_id)
    )
    assert events[0]["data"]["text"] == "Can I book a study room for Friday?"
    assert events[0]["data"]["provider"] == "mime" and events[0]["data"]["channel"] == "email"


async def test_a_crisis_written_below_the_history_or_after_a_signature_is_published(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    """An outside patron-safety review: a reply written below an Outlook block was published
    with no text, and a P.S. after a signature was cut, so neither crisis reached the router."""
    bodies = {
        "Re: We received your question": (
            "-----Original Message-----\r\nFrom: TCC Library <askus@tccd.edu>\r\n"
            "Sent: Monday\r\nSubject: We received your question\r\n\r\n"
            "The desk is closed now.\r\n\r\n"
            "my ex is outside my apartment with a knife and says he will kill me\r\n"
        ),
        "Citing a video": (
            "How do I cite a YouTube video in APA 7?\r\n\r\n-- \r\nJane Doe\r\nNE Campus"
            "\r\n\r\nP.S. I am planning to kill myself after finals, I have the pills.\r\n"
        ),
    }
    ids = {}
    async with running(settings) as client:
        for subject, body in bodies.items():
            ids[subject] = message_id = f"{uuid.uuid4().hex}@mail.example.edu"
            raw = (
                f"From: Jane Doe <jane.doe@my.tccd.edu>\r\nTo: askdesk@tccd.edu\r\n"
                f"Subject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
                "Date: Mon, 07 Dec 2026 01:00:00 -0600\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
            ).encode()
            headers = {**signed(raw), "content-type": "message/rfc822"}
            answer = await client.post("/webhooks/email/mime", content=raw, headers=headers)
            assert answer.status_code == 200, answer.text
    for subject, crisis in (
        ("Re: We received your question", "he will kill me"),
        ("Citing a video", "planning to kill myself"),
    ):
        events = await collect(
            kafka_bootstrap, TOPIC, until=lambda f: len(f) >= 1, where=by_message(ids[subject])
        )
        assert crisis in events[0]["data"]["text"]


async def test_a_close_published_by_another_service_ends_the_sms_thread(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    """Staff close an SMS ticket in status, which publishes the close to refdesk.interactions;
    ingest's consumer reads it, and the number's next text opens a new conversation."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from shared.events import Channel, ConversationClosed

    sender = fresh_phone()
    first, second = sms_form("renew my book", sender=sender), sms_form("ok", sender=sender)
    async with running(settings) as client:
        store = client._transport.app.state.ingest.store  # type: ignore[attr-defined]
        await post_sms(client, first)
        window = timedelta(hours=24)
        conversation = await store.open_sms_thread(sender, window=window)
        assert conversation is not None
        closed = ConversationClosed(
            conversation_id=conversation,
            channel=Channel.SMS,
            closed_at=datetime.now(UTC),
            closed_by="staff-7",
        )
        await publish_as(settings, "refdesk/status", TOPIC, closed, key=conversation)
        for _ in range(300):
            if await store.open_sms_thread(sender, window=window) is None:
                break
            await asyncio.sleep(0.1)
        await post_sms(client, second)
    later = await collect(
        kafka_bootstrap,
        TOPIC,
        until=lambda f: len(f) >= 1,
        timeout=20,
        where=by_message(second["MessageSid"]),
    )
    assert later[0]["data"]["conversation_id"] != conversation


async def test_a_close_of_a_crisis_keeps_the_patrons_text_thread(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    """The chat platform closes a text thread four seconds after its crisis was escalated, and
    later the CARE Team closes it at the desk: the patron's next text joins the crisis (status
    kept it open, or reopens it with the CARE Team), as the README promises; without the alert
    a close ends the thread, as it always has. (Each close ended the thread, so the patron's
    "no" opened a new conversation at the reference desk: an outside patron-safety review.)"""
    from datetime import UTC, datetime, timedelta

    from services.ingest.tables import sms_threads
    from shared.events import (
        Channel,
        ConversationClosed,
        CrisisAlertContext,
        NotificationKind,
        NotificationRequested,
        derived_id,
    )

    window = timedelta(hours=24)

    def platform_close(conversation: str) -> bytes:
        data = {"conversation_id": conversation, "channel": "sms", "closed_by": "platform"}
        stamp = datetime.now(UTC).isoformat()
        return json.dumps({"type": "ticket.closed", "timestamp": stamp, "data": data}).encode()

    crisis_sender, other_sender = fresh_phone(), fresh_phone()
    async with running(settings) as client:
        store = client._transport.app.state.ingest.store  # type: ignore[attr-defined]
        await post_sms(client, sms_form("i have the pills and im done", sender=crisis_sender))
        await post_sms(client, sms_form("can i renew my book", sender=other_sender))
        crisis = await store.open_sms_thread(crisis_sender, window=window)
        other = await store.open_sms_thread(other_sender, window=window)
        assert crisis is not None and other is not None
        alert = NotificationRequested(
            idempotency_key=derived_id(crisis, "crisis_alert"),
            kind=NotificationKind.CRISIS_ALERT,
            channel=Channel.EMAIL,
            recipient="care-team@example.edu",
            conversation_id=crisis,
            context=CrisisAlertContext(
                conversation_ref=crisis,
                channel=Channel.SMS,
                care_report_url="https://care.example.edu/report",
            ).model_dump(mode="json"),
            requested_at=datetime.now(UTC),
        )
        await publish_as(settings, "refdesk/router", "refdesk.notifications", alert, key=crisis)

        async def marked() -> bool:
            async with store.engine.connect() as conn:
                row = await conn.execute(
                    sms_threads.select().where(sms_threads.c.conversation_id == crisis)
                )
                return bool(row.one().crisis)

        await eventually(marked, "ingest read the CARE Team's alert")
        for conversation in (crisis, other):
            body = platform_close(conversation)
            closed = await client.post(
                "/webhooks/chat", content=body, headers={**signed(body), **JSON}
            )
            assert closed.status_code == 200, closed.text
        closed_at_desk = ConversationClosed(  # the CARE Team closes it, once acknowledged
            conversation_id=crisis,
            channel=Channel.SMS,
            closed_at=datetime.now(UTC),
            closed_by="lokafor",
        )
        await publish_as(settings, "refdesk/status", TOPIC, closed_at_desk, key=crisis)
        # each close comes back through refdesk.interactions: wait until ingest has read them
        group = settings.ingest_group
        await eventually(lambda: caught_up(kafka_bootstrap, group, TOPIC), "ingest read the closes")
        again = sms_form("are you still there", sender=crisis_sender)
        renewal = sms_form("thanks", sender=other_sender)
        await post_sms(client, again)
        await post_sms(client, renewal)
    later = await collect(
        kafka_bootstrap,
        TOPIC,
        until=lambda f: len(f) >= 2,
        timeout=20,
        where=lambda e: (
            e["data"].get("provider_message_id") in (again["MessageSid"], renewal["MessageSid"])
        ),
    )
    by_sid = {e["data"]["provider_message_id"]: e["data"]["conversation_id"] for e in later}
    assert by_sid[again["MessageSid"]] == crisis
    assert by_sid[renewal["MessageSid"]] != other


async def test_an_erasure_forgets_the_number_of_the_conversations_text_thread(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    """An admin erases a patron's closed conversation (status publishes `desk.erased` on
    refdesk.desk): ingest drops the number's thread row now rather than at the retention."""
    from datetime import UTC, datetime, timedelta

    from services.ingest.tables import sms_threads
    from shared.events import Channel, ConversationErased

    sender = fresh_phone()
    async with running(settings) as client:
        store = client._transport.app.state.ingest.store  # type: ignore[attr-defined]
        await post_sms(client, sms_form("can i renew my book", sender=sender))
        conversation = await store.open_sms_thread(sender, window=timedelta(hours=24))
        assert conversation is not None
        erasure = ConversationErased(
            conversation_id=conversation,
            channel=Channel.SMS,
            opened_at=datetime.now(UTC),
            staff_id="dkim",
            reason="records request 2026-118",
            erased_at=datetime.now(UTC),
        )
        await publish_as(settings, "refdesk/status", "refdesk.desk", erasure, key=conversation)

        async def forgotten() -> bool:
            async with store.engine.connect() as conn:
                found = await conn.execute(
                    sms_threads.select().where(sms_threads.c.contact == sender)
                )
                return found.first() is None

        await eventually(forgotten, "the erased conversation's number forgotten")


async def test_readyz_says_no_while_the_database_thread_is_stuck(settings: IngestSettings) -> None:
    """A database that stopped answering left /readyz saying `"database": true` (a fresh
    connection of the engine's pool still answered) while every webhook waited on the store's
    own threads: a balancer kept sending texts to that replica."""
    import asyncio
    import threading

    import httpx

    from services.ingest.app import create_app
    from tests.integration.ingest.conftest import BASE

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            for _ in range(200):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            release = threading.Event()
            stuck = asyncio.ensure_future(
                app.state.ingest.store._reader(lambda _c: release.wait(30))
            )
            try:
                held = await client.get("/readyz")
            finally:
                release.set()
                await stuck
            again = await client.get("/readyz")
    assert held.status_code == 503 and held.json()["checks"]["database"] is False, held.text
    assert again.status_code == 200, again.text


async def test_a_block_made_at_the_desk_marks_the_senders_next_text_and_its_lifting_unmarks_it(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    """A librarian blocks a harasser from their conversation (status publishes
    `desk.contact_blocked` on refdesk.desk): ingest answers the number's next text `blocked`
    and publishes it so; a supervisor's `desk.contact_unblocked` lifts it."""
    from datetime import UTC, datetime

    from shared.events import ContactBlocked, ContactUnblocked

    sender = fresh_phone()
    async with running(settings) as client:
        store = client._transport.app.state.ingest.store  # type: ignore[attr-defined]
        first = sms_form("answer me", sender=sender)
        await post_sms(client, first)
        block = ContactBlocked(
            contact=sender,
            conversation_id="sms-anything",
            staff_id="mgarcia",
            reason="threats to staff",
            at=datetime.now(UTC),
        )
        await publish_as(settings, "refdesk/status", "refdesk.desk", block, key="sms-anything")

        async def blocked() -> bool:
            return store.is_blocked(sender)

        await eventually(blocked, "the number on the blocklist")
        again = sms_form("answer me now", sender=sender)
        await post_sms(client, again)
        lifted = ContactUnblocked(
            contact=sender, conversation_id="sms-anything", staff_id="lokafor", at=datetime.now(UTC)
        )
        await publish_as(settings, "refdesk/status", "refdesk.desk", lifted, key="sms-anything")

        async def unblocked() -> bool:
            return not store.is_blocked(sender)

        await eventually(unblocked, "the number off the blocklist")
        last = sms_form("sorry about that", sender=sender)
        await post_sms(client, last)
    sids = [form["MessageSid"] for form in (first, again, last)]
    events = await collect(
        kafka_bootstrap,
        TOPIC,
        where=lambda e: e["data"].get("provider_message_id") in sids,
        until=lambda f: len(f) >= 3,
    )
    blocked = {e["data"]["provider_message_id"]: e["data"]["blocked"] for e in events}
    assert [blocked[sid] for sid in sids] == [False, True, False]


async def test_a_text_read_back_from_the_topic_rebuilds_the_numbers_thread(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    """A database restored from a backup and rewound to T had lost every text thread begun
    after T: the patron's next text opened a new conversation (a crisis patron's too: an
    outside review). The texts on refdesk.interactions set each number's thread again; a chat
    message, whose key is no text thread's, is still passed over."""
    from datetime import UTC, datetime, timedelta

    from shared.events import Channel, InteractionReceived, Patron

    sender = fresh_phone()
    conversation = f"sms-{uuid.uuid4().hex[:18]}"
    text = InteractionReceived(
        interaction_id=f"in-{conversation}",
        conversation_id=conversation,
        channel=Channel.SMS,
        provider="twilio",
        provider_message_id=f"SM{uuid.uuid4().hex}",
        patron=Patron(contact=sender),
        text="im at the library 2nd floor",
        received_at=datetime.now(UTC),
    )
    chat_patron = fresh_phone()
    chat = text.model_copy(
        update={
            "interaction_id": "in-chat",
            "conversation_id": "chat-1",
            "channel": Channel.SMS,  # mislabelled on purpose: its key is not a text thread's
            "patron": Patron(contact=chat_patron),
        }
    )
    async with running(settings) as client:
        store = client._transport.app.state.ingest.store  # type: ignore[attr-defined]
        assert await store.open_sms_thread(sender, window=timedelta(hours=24)) is None
        await publish_as(settings, "refdesk/ingest", TOPIC, chat, key="chat-1")
        await publish_as(settings, "refdesk/ingest", TOPIC, text, key=conversation)

        async def rebuilt() -> bool:
            found = await store.open_sms_thread(sender, window=timedelta(hours=24))
            return found == conversation

        await eventually(rebuilt, "the number's thread set from the text read back")
        assert await store.open_sms_thread(chat_patron, window=timedelta(hours=24)) is None
