"""The notifier end to end in one process: commands from the real broker become emails at a
real SMTP server, once each, through the real ledger; failures retry or dead-letter."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from faststream.kafka import KafkaBroker

from services.notifier.messages import make_message_id
from shared.events import NotificationKind, NotificationRequested, Priority

from .conftest import Configure
from .notifier_env import (
    SURVEY_URL,
    SmtpRelay,
    command,
    dead_letters,
    eventually,
    metric,
    running,
    send,
    settled,
)

CIRCULATION: dict[str, Any] = {
    "question": "Can I renew Biology 1406 lab manual for another week?",
    "channel": "sms",
    "conversation_ref": "LibAnswers #48213",
    "patron_name": "Ana Gomez",
    "tcc_id": "T00123456",
    "item": "Biology 1406 lab manual",
    "patron_contact": "+18175550123",
    "missing_fields": ["tcc_id"],
    "details": {"campus": "South"},
}
CRISIS: dict[str, Any] = {
    "conversation_ref": "chat-77812",
    "channel": "chat",
    "care_report_url": "https://cm.maxient.com/reportingform.php?TarrantCountyCollege",
    "campus": "Northeast",
    "summary": "The patron wrote that they cannot go on.",
    "detected_at": "Sat 10:02 AM",
}


def parts(msg: EmailMessage) -> dict[str, str]:
    """The text and HTML alternatives of a delivered email, by content type."""
    assert msg.get_content_type() == "multipart/alternative"
    found = {}
    for part in msg.iter_parts():
        assert isinstance(part, EmailMessage)
        found[part.get_content_type()] = part.get_content()
    assert set(found) == {"text/plain", "text/html"}
    return found


async def delivered_once(relay: SmtpRelay, cmd: NotificationRequested, domain: str) -> EmailMessage:
    """Wait for the command's email; it must be there exactly once."""
    message_id = make_message_id(cmd.idempotency_key, domain)
    await eventually(lambda: relay.handler.with_id(message_id), f"email {message_id}")
    [msg] = relay.handler.with_id(message_id)
    return msg


async def test_delivers_circulation_survey_and_crisis_emails(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    settings = await configure()
    circulation = command(
        NotificationKind.CIRCULATION_EMAIL,
        recipient="circdesk@tccd.edu",
        context=CIRCULATION,
        priority=Priority.HIGH,
    )
    survey = command(
        NotificationKind.SURVEY, recipient="ana.gomez@my.tccd.edu", context={"patron_name": "Ana"}
    )  # survey_url comes from the settings
    crisis = command(
        NotificationKind.CRISIS_ALERT,
        recipient="careteam@tccd.edu",
        context=CRISIS,
        priority=Priority.URGENT,
    )
    async with running(settings) as client:
        for cmd in (circulation, survey, crisis):
            await send(producer, cmd)
        circ_mail, survey_mail, crisis_mail = [
            await delivered_once(relay, cmd, settings.message_id_domain)
            for cmd in (circulation, survey, crisis)
        ]
        await settled(client, sent=3)

    for mail, cmd in ((circ_mail, circulation), (survey_mail, survey), (crisis_mail, crisis)):
        assert mail["Message-ID"] == make_message_id(cmd.idempotency_key, "refdesk.tccd.edu")
        assert mail["To"] == cmd.recipient
        assert mail["From"].addresses[0].addr_spec == "askdesk@tccd.edu"
        assert mail["X-Refdesk-Kind"] == cmd.kind.value
        assert mail["Auto-Submitted"] == "auto-generated"
        assert mail["Date"]

    text, html = parts(circ_mail)["text/plain"], parts(circ_mail)["text/html"]
    assert CIRCULATION["question"] in text and "Biology 1406 lab manual" in html
    assert "LibAnswers #48213" in text and "T00123456" in text
    assert "[refdesk #" not in circ_mail["Subject"]  # staff-facing: no ticket tag
    assert circ_mail["Importance"] == "high" and circ_mail["X-Priority"] == "2"

    survey_parts = parts(survey_mail)
    assert survey_mail["Subject"].endswith(f"[refdesk #{survey.conversation_id}]")
    assert SURVEY_URL in survey_parts["text/plain"] and SURVEY_URL in survey_parts["text/html"]
    assert "Importance" not in survey_mail

    crisis_parts = parts(crisis_mail)
    assert CRISIS["care_report_url"] in crisis_parts["text/plain"]
    assert "chat-77812" in crisis_parts["text/html"]
    assert crisis_mail["X-Priority"] == "1" and "[refdesk #" not in crisis_mail["Subject"]
    assert len(relay.handler.messages) == 3


async def test_the_same_command_twice_is_one_email(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    settings = await configure()
    cmd, sentinel = command(), command()
    async with running(settings) as client:
        await send(producer, cmd)
        await send(producer, cmd)  # a redelivery from the router: same key, new event id
        await delivered_once(relay, cmd, settings.message_id_domain)
        await send(producer, cmd)  # and once more after it was sent
        await send(producer, sentinel)
        # One partition: once the later sentinel is delivered, the consumer is past every copy.
        await delivered_once(relay, sentinel, settings.message_id_domain)
        await settled(client, sent=2)
    assert relay.handler.count_ids() == {
        make_message_id(cmd.idempotency_key, settings.message_id_domain): 1,
        make_message_id(sentinel.idempotency_key, settings.message_id_domain): 1,
    }


async def test_temporary_failures_are_retried_until_delivered(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    settings = await configure()
    cmd = command(recipient="busy.mailbox@my.tccd.edu")
    relay.handler.replies_for[cmd.recipient] = [
        "421 4.3.2 Service not available",
        "451 4.3.0 Try again later",
    ]
    labels = {"kind": "survey", "channel": "email"}
    retries = metric("refdesk_notification_retries_total", **labels)
    transient = metric("refdesk_notification_failures_total", reason="transient", **labels)
    async with running(settings) as client:
        await send(producer, cmd)
        await delivered_once(relay, cmd, settings.message_id_domain)
        await settled(client, sent=1)
    assert relay.handler.replies_for[cmd.recipient] == []  # both refusals were used up
    assert len(relay.handler.messages) == 1
    assert metric("refdesk_notification_retries_total", **labels) - retries == 2
    failures = metric("refdesk_notification_failures_total", reason="transient", **labels)
    assert failures - transient == 2


async def test_permanent_failure_is_dead_lettered_and_the_next_is_delivered(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    settings = await configure()
    bounced = command(
        NotificationKind.CIRCULATION_EMAIL, recipient="gone@tccd.edu", context=CIRCULATION
    )
    relay.handler.replies_for[bounced.recipient] = ["550 5.7.1 Message rejected"]
    following = command()
    async with running(settings) as client:
        await send(producer, bounced)
        await send(producer, following)
        await delivered_once(relay, following, settings.message_id_domain)
        await settled(client, sent=1, dead=1)
    [letter] = await dead_letters(kafka_bootstrap, settings.notifier_group, count=1)
    data = letter["data"]
    assert "550" in data["reason"] and data["reason"].startswith("permanent")
    assert NotificationRequested.model_validate_json(data["value"]) == bounced
    assert data["topic"] == "refdesk.notifications" and letter["_key"] == bounced.conversation_id
    assert letter["type"] == "edu.tccd.refdesk.dead_letter.v1"
    assert (
        relay.handler.with_id(make_message_id(bounced.idempotency_key, settings.message_id_domain))
        == []
    )
    assert len(relay.handler.messages) == 1


async def test_an_erasure_blanks_the_conversations_messages_and_they_stay_sent_once(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    """An admin erases a patron's closed conversation (status publishes `desk.erased` on
    refdesk.desk): the ledger's copies of its messages (the recipient, the text as sent) are
    blanked when the notifier reads it, another conversation's are not, and the same command
    read again from the topic is still not sent a second time."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from services.notifier.sms import outbox_folders, outbox_path
    from services.notifier.tables import ledger
    from shared.db import create_engine
    from shared.events import Channel, ConversationErased
    from shared.kafka import publish
    from shared.topics import DESK

    settings = await configure()
    erased, kept = command(), command()
    # the chat path today is the outbox folder: its file of the conversation goes too
    handoff = command(
        NotificationKind.HANDOFF,
        channel=Channel.CHAT,
        recipient=erased.conversation_id,
        context={"department_name": "Writing Center"},
    ).model_copy(update={"conversation_id": erased.conversation_id})
    chat_file = outbox_path(outbox_folders(settings.run_dir)[0], handoff.idempotency_key)
    counted = metric("refdesk_notifier_ledger_erased_total")
    async with running(settings) as client:
        await send(producer, erased)
        await send(producer, kept)
        await send(producer, handoff)
        await delivered_once(relay, erased, settings.message_id_domain)
        await delivered_once(relay, kept, settings.message_id_domain)
        await settled(client, sent=3)
        assert chat_file.exists()
        await publish(
            producer,
            DESK.name,
            ConversationErased(
                conversation_id=erased.conversation_id,
                channel=Channel.EMAIL,
                opened_at=datetime.now(UTC),
                staff_id="dkim",
                reason="records request 2026-118",
                erased_at=datetime.now(UTC),
            ),
            key=erased.conversation_id,
            source="refdesk/status",
        )
        engine = create_engine(settings.database_url)

        async def rows() -> dict[str, tuple[object, ...]]:
            async with engine.connect() as conn:
                found = await conn.execute(
                    select(
                        ledger.c.idempotency_key,
                        ledger.c.state,
                        ledger.c.command,
                        ledger.c.delivered_text,
                        ledger.c.subject,
                    )
                )
                return {row[0]: tuple(row[1:]) for row in found}

        async def blanked() -> bool:
            # the ledger's rows are blanked in their transaction, the outbox files right after
            body = (await rows())[erased.idempotency_key][1]
            return isinstance(body, dict) and body.get("erased") is True and not chat_file.exists()

        try:
            await eventually(blanked, "the erased conversation's message blanked")
            now = await rows()
        finally:
            await engine.dispose()
        state, body, text, subject = now[erased.idempotency_key]
        assert state == "sent" and text is None and subject is None
        assert "ana.gomez" not in str(body)
        state, body, text, subject = now[kept.idempotency_key]
        assert body["recipient"] == "ana.gomez@my.tccd.edu" and text  # type: ignore[index]
        assert metric("refdesk_notifier_ledger_erased_total") == counted + 2
        assert not chat_file.exists()
        # the erased conversation's command read again: its row still says sent
        sentinel = command()
        await send(producer, erased)
        await send(producer, sentinel)
        await delivered_once(relay, sentinel, settings.message_id_domain)
        await settled(client, sent=4)
    assert (
        relay.handler.count_ids()[
            make_message_id(erased.idempotency_key, settings.message_id_domain)
        ]
        == 1
    )


async def test_a_relay_that_never_confirms_in_time_gets_a_few_copies_then_it_is_given_up(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    """A relay that takes the whole message and answers its end after the notifier's timeout
    (one that scans mail, overloaded) had been sent a new copy at every retry, every 40 s, with
    no end (an outside probe: six copies of one staff reply). The copies are spaced by
    REFDESK_SMTP_UNCONFIRMED_WAIT_S and stop after REFDESK_SMTP_UNCONFIRMED_COPIES: the
    email is given up as "unconfirmed", and the next email, answered in time, goes out."""
    settings = await configure(
        smtp_send_timeout_s=0.5, smtp_unconfirmed_wait_s=1.0, smtp_unconfirmed_copies=3
    )
    slow = command(recipient="slow.scanner@my.tccd.edu")
    relay.handler.pause_for[slow.recipient] = 2.0
    labels = {"kind": "survey", "channel": "email"}
    unconfirmed = metric("refdesk_notification_failures_total", reason="unconfirmed", **labels)
    async with running(settings) as client:
        await send(producer, slow)
        await settled(client, sent=0, dead=1, timeout=60)
        following = command()
        await send(producer, following)
        await delivered_once(relay, following, settings.message_id_domain)
        await settled(client, sent=1, dead=1)
    began = [rcpt for step, rcpt in relay.handler.timeline if step == "begin"]
    assert began.count(slow.recipient) == 3  # three copies reached DATA, and no more
    failures = metric("refdesk_notification_failures_total", reason="unconfirmed", **labels)
    assert failures - unconfirmed == 3
