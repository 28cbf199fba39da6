"""A patron's email reply threads by the Message-ID of the email refdesk sent them, and only
from the address refdesk sent it to (a forged In-Reply-To starts a new conversation); a ticket
tag threads only from an address of its conversation (a forged tag is not followed); an email
whose sender failed the receiving system's checks threads by neither."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.ingest.providers.authenticity import SenderCheck
from services.ingest.providers.emails import EmailInbound
from services.ingest.providers.mime import parse_mime
from services.ingest.replies import (
    PARTY_NAMESPACE,
    SENT_NAMESPACE,
    STAFF_SENT_NAMESPACE,
    local_part,
    party_key,
    recipient_binding,
    sent_entry,
    sent_key,
)
from services.ingest.service import Ingest
from services.ingest.store import IngestStore
from services.notifier.messages import make_message_id
from shared.events import (
    Channel,
    NotificationKind,
    NotificationRequested,
    StaffReplyContext,
    derived_id,
)
from tests.fakes import FakeBroker

PATRON = "ana.gomez@my.tccd.edu"


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


def email(
    *,
    sender: str | None = PATRON,
    in_reply_to: str | None = None,
    tag: str | None = None,
    check: SenderCheck = SenderCheck.UNKNOWN,
) -> EmailInbound:
    return EmailInbound(
        message_id=f"{uuid.uuid4().hex}@mail.example.edu",
        sender_email=sender,
        sender_name=None,
        recipient="askdesk@tccd.edu",
        subject=f"Re: [refdesk #{tag}] Lost book" if tag else "Re: Lost book",
        text="Thanks, I will bring it Friday.",
        in_reply_to=in_reply_to,
        ticket_tag=tag,
        sender_check=check,
    )


def conversation_of(broker: FakeBroker, mail: EmailInbound) -> str:
    """The conversation the event published for `mail` names."""
    [conversation] = [
        event["data"]["conversation_id"]
        for _topic, _key, event in broker.published
        if event["data"]["provider_message_id"] == mail.message_id
    ]
    return str(conversation)


def test_ingest_remembers_the_message_id_the_notifier_gives_the_email() -> None:
    reply = staff_reply("email-9")
    sent = make_message_id(reply.idempotency_key, "desk.tccd.edu")  # as the notifier sends it
    entry = sent_entry(reply)
    assert entry is not None
    assert entry[1] == sent_key(local_part(sent.strip("<>")), PATRON)


def test_emails_to_patrons_are_remembered_for_replies_and_staffs_only_for_bounces() -> None:
    reply = staff_reply("email-1")
    entry = sent_entry(reply)
    assert entry is not None and entry[0] == SENT_NAMESPACE
    assert sent_entry(reply.model_copy(update={"channel": Channel.SMS})) is None
    circulation = reply.model_copy(update={"kind": NotificationKind.CIRCULATION_EMAIL})
    staff = sent_entry(circulation)
    assert staff is not None and staff[0] == STAFF_SENT_NAMESPACE


async def test_a_staff_members_answer_to_a_circulation_email_is_not_threaded_by_it(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    """An email refdesk sent staff is remembered so its bounce can find the conversation; a
    manager answering it from their own address is not the patron and starts a new one."""
    await ingest.accept_email(email(), provider="mailgun")
    conversation = broker.published[0][2]["data"]["conversation_id"]
    manager = "circ.managers@tccd.edu"
    circulation = staff_reply(conversation, to=manager).model_copy(
        update={"kind": NotificationKind.CIRCULATION_EMAIL}
    )
    entry = sent_entry(circulation)
    assert entry is not None
    await store.remember(entry)
    sent = make_message_id(circulation.idempotency_key, "refdesk.local").strip("<>")
    answer = email(sender=manager, in_reply_to=sent)
    await ingest.accept_email(answer, provider="mailgun")
    assert conversation_of(broker, answer) != conversation


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


def test_a_command_emailing_a_patron_binds_their_address_to_its_conversation() -> None:
    reply = staff_reply("email-5", to="Ana.Gomez@My.TCCD.edu")
    assert recipient_binding(reply) == (PARTY_NAMESPACE, party_key("email-5", PATRON), "email-5")
    assert party_key("email-5", PATRON) != party_key("email-6", PATRON)
    assert PATRON not in party_key("email-5", PATRON)  # hashed, as the sent keys are
    circulation = reply.model_copy(update={"kind": NotificationKind.CIRCULATION_EMAIL})
    assert recipient_binding(circulation) is None
    assert recipient_binding(reply.model_copy(update={"channel": Channel.SMS})) is None


async def test_the_patrons_own_reply_with_the_ticket_tag_joins_its_conversation(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    first = email()
    await ingest.accept_email(first, provider="mailgun")
    conversation = conversation_of(broker, first)
    # accepting it made the patron's address one of the conversation's
    assert await store.seen_conversation(PARTY_NAMESPACE, party_key(conversation, PATRON)) == (
        conversation
    )
    reply = email(tag=conversation)
    assert await ingest.accept_email(reply, provider="mailgun") == "accepted"
    assert conversation_of(broker, reply) == conversation


async def test_a_forged_ticket_tag_from_another_address_starts_a_new_conversation(
    ingest: Ingest, broker: FakeBroker
) -> None:
    first = email()
    await ingest.accept_email(first, provider="mailgun")
    conversation = conversation_of(broker, first)
    forged = email(sender="someone.else@example.org", tag=conversation)
    assert await ingest.accept_email(forged, provider="mailgun") == "accepted"
    assert conversation_of(broker, forged) != conversation
    assert conversation_of(broker, forged).startswith("email-")


async def test_a_forged_ticket_tag_is_passed_over_for_the_senders_own_in_reply_to(
    ingest: Ingest, broker: FakeBroker
) -> None:
    victims = email()
    await ingest.accept_email(victims, provider="mailgun")
    own = email(sender="someone.else@example.org")
    await ingest.accept_email(own, provider="mailgun")
    forged = email(
        sender="someone.else@example.org",
        tag=conversation_of(broker, victims),
        in_reply_to=own.message_id,
    )
    assert await ingest.accept_email(forged, provider="mailgun") == "accepted"
    assert conversation_of(broker, forged) == conversation_of(broker, own)


async def test_an_address_refdesk_emailed_in_a_conversation_may_answer_under_its_tag(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    """A texting patron asked to continue by email: the conversation is an SMS one, and the
    address is known only from refdesk's email to it on refdesk.notifications."""
    command = staff_reply("sms-0b3f9d1e2a7c4f58", to="Ana.Gomez@my.tccd.edu")
    entry, binding = sent_entry(command), recipient_binding(command)
    assert entry is not None and binding is not None
    await store.remember(entry, bindings=[binding])  # what ingest's consumer does with it
    reply = email(tag="sms-0b3f9d1e2a7c4f58")
    assert await ingest.accept_email(reply, provider="mailgun") == "accepted"
    assert conversation_of(broker, reply) == "sms-0b3f9d1e2a7c4f58"
    stranger = email(sender="someone.else@example.org", tag="sms-0b3f9d1e2a7c4f58")
    await ingest.accept_email(stranger, provider="mailgun")
    assert conversation_of(broker, stranger) != "sms-0b3f9d1e2a7c4f58"


async def test_a_ticket_tag_without_a_readable_sender_is_not_followed(
    ingest: Ingest, broker: FakeBroker
) -> None:
    first = email()
    await ingest.accept_email(first, provider="mailgun")
    conversation = conversation_of(broker, first)
    anonymous = email(sender=None, tag=conversation)
    await ingest.accept_email(anonymous, provider="mailgun")
    assert conversation_of(broker, anonymous) != conversation


async def test_a_forged_tag_does_not_make_its_sender_a_party_of_the_tagged_conversation(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    first = email()
    await ingest.accept_email(first, provider="mailgun")
    conversation = conversation_of(broker, first)
    await ingest.accept_email(
        email(sender="someone.else@example.org", tag=conversation), provider="mailgun"
    )
    assert (
        await store.seen_conversation(
            PARTY_NAMESPACE, party_key(conversation, "someone.else@example.org")
        )
        is None
    )
    again = email(sender="someone.else@example.org", tag=conversation)
    await ingest.accept_email(again, provider="mailgun")
    assert conversation_of(broker, again) != conversation


async def test_a_patrons_address_that_failed_its_checks_threads_by_neither_tag_nor_reply(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    """Someone forging the patron's own From: the receiving system's DMARC (or SPF) failed, so
    neither the tag nor refdesk's Message-ID puts the email into the patron's conversation."""
    first = email()
    await ingest.accept_email(first, provider="mailgun")
    conversation = conversation_of(broker, first)
    command = staff_reply(conversation)
    entry = sent_entry(command)
    assert entry is not None
    await store.remember(entry)
    sent = make_message_id(command.idempotency_key, "refdesk.local").strip("<>")
    forged = email(tag=conversation, in_reply_to=sent, check=SenderCheck.FAILED)
    assert await ingest.accept_email(forged, provider="mailgun") == "accepted"
    assert conversation_of(broker, forged) != conversation
    assert conversation_of(broker, forged).startswith("email-")
    # the same email with a passing or no verdict is the patron's reply, as before
    for check in (SenderCheck.PASSED, SenderCheck.UNKNOWN):
        genuine = email(tag=conversation, in_reply_to=sent, check=check)
        await ingest.accept_email(genuine, provider="mailgun")
        assert conversation_of(broker, genuine) == conversation


async def test_an_email_that_failed_its_checks_binds_no_address_and_is_still_published(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    forged = email(sender="someone.else@example.org", check=SenderCheck.FAILED)
    assert await ingest.accept_email(forged, provider="mailgun") == "accepted"
    conversation = conversation_of(broker, forged)  # published, in a conversation of its own
    bound = party_key(conversation, "someone.else@example.org")
    assert await store.seen_conversation(PARTY_NAMESPACE, bound) is None
    # and it says so: nothing goes to that address unasked, and staff are warned
    [patron] = [
        event["data"]["patron"]
        for _topic, _key, event in broker.published
        if event["data"]["provider_message_id"] == forged.message_id
    ]
    assert patron["unverified"] is True
    # a later reply into that conversation still threads by the email's own Message-ID
    follow_up = email(sender="someone.else@example.org", in_reply_to=forged.message_id)
    await ingest.accept_email(follow_up, provider="mailgun")
    assert conversation_of(broker, follow_up) == conversation


async def test_a_from_naming_the_patron_beside_another_address_is_not_the_patrons(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    """An outside reviewer's raw MIME email: `From: <patron> <attacker>` with a DMARC pass for
    the attacker's domain, the patron's ticket tag and their email's Message-ID, had been read
    as the patron's and threaded into their conversation. It starts one of its own, and binds
    no address."""
    first = email()
    await ingest.accept_email(first, provider="mime")
    conversation = conversation_of(broker, first)
    raw = (
        "Authentication-Results: mx.tccd.edu; dmarc=pass header.from=evil.example\r\n"
        f"From: {PATRON} <attacker@evil.example>\r\n"
        "Return-Path: <attacker@evil.example>\r\n"
        f"Subject: Re: [refdesk #{conversation}] Lost book\r\n"
        f"Message-ID: <forged-1@evil.example>\r\nIn-Reply-To: <{first.message_id}>\r\n"
        "\r\nPlease send my records to this address.\r\n"
    ).encode()
    forged = parse_mime(raw)
    assert await ingest.accept_email(forged, provider="mime") == "accepted"
    own = conversation_of(broker, forged)
    assert own != conversation
    never_bound = [(conversation, "attacker@evil.example"), (own, "attacker@evil.example")]
    for where, address in [*never_bound, (own, PATRON)]:
        bound = party_key(where, address)
        assert await store.seen_conversation(PARTY_NAMESPACE, bound) is None
