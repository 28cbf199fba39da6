"""commands_for and survey_for, table-driven: given a message on a channel at an hour, the
notification commands that follow its decision (kind, channel, recipient, idempotency key)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.router.commands import commands_for, patron_messages, staff_commands, survey_for
from services.router.policy import Policy
from services.router.policy.decision import Decision, DecisionInput
from shared.events import (
    Channel,
    ConversationClosed,
    InteractionReceived,
    NotificationRequested,
    Patron,
    derived_id,
)

OPEN_HOURS = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Chicago
OVERNIGHT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # a Wednesday, 02:00 in Chicago
PHONE = "+18175550123"
CRISIS = "I don't feel safe and I've been thinking about hurting myself"
LOST_BOOK = "I lost a library book. I'm Ana Gomez, TCC ID 2223334, the book is 1984"


def interaction(
    text: str, channel: Channel, *, when: datetime, contact: str | None = PHONE
) -> InteractionReceived:
    return InteractionReceived(
        interaction_id=str(uuid.uuid4()),
        conversation_id=f"{channel.value}-{uuid.uuid4()}",
        channel=channel,
        provider="test",
        provider_message_id=str(uuid.uuid4()),
        patron=Patron(contact=contact),
        text=text,
        received_at=when,
    )


def commands(policy: Policy, data: InteractionReceived) -> list[NotificationRequested]:
    inp = DecisionInput(channel=data.channel, text=data.text, received_at=data.received_at)
    return commands_for(data, policy.decide(inp, online=None), policy)


def shape(out: list[NotificationRequested]) -> list[tuple[str, str, str]]:
    return [(c.kind.value, c.channel.value, c.recipient) for c in out]


CASES = [
    # text, channel, when, expected (kind, channel, recipient: "patron"/"care"/"circ")
    ("can i renew my book", Channel.SMS, OPEN_HOURS, [("handoff", "sms", "patron")]),
    (
        CRISIS,
        Channel.SMS,
        OVERNIGHT,
        [("crisis_alert", "email", "care"), ("crisis_resources", "sms", "patron")],
    ),
    (
        CRISIS,
        Channel.CHAT,
        OPEN_HOURS,
        [("crisis_alert", "email", "care"), ("crisis_resources", "chat", "patron")],
    ),
    # the circulation managers are emailed, and the patron told they will be contacted (it
    # heard nothing: the desk's staff do not see the circulation managers' conversations)
    (
        LOST_BOOK,
        Channel.EMAIL,
        OPEN_HOURS,
        [("circulation_email", "email", "circ"), ("handoff", "email", "patron")],
    ),
    (
        LOST_BOOK,
        Channel.SMS,
        OVERNIGHT,
        [("circulation_email", "email", "circ"), ("handoff", "sms", "patron")],
    ),
    ("HOURS", Channel.SMS, OPEN_HOURS, [("keyword_reply", "sms", "patron")]),
]


@pytest.mark.parametrize(("text", "channel", "when", "expected"), CASES)
def test_commands_by_decision(
    policy: Policy, text: str, channel: Channel, when: datetime, expected: list[tuple[str, ...]]
) -> None:
    data = interaction(text, channel, when=when, contact=PHONE if channel is Channel.SMS else None)
    if channel is Channel.EMAIL:
        data = data.model_copy(update={"patron": Patron(contact="patron@example.edu")})
    patron = data.conversation_id if channel is Channel.CHAT else data.patron.contact
    names = {
        "patron": patron,
        "care": policy.department("care-team").contact,
        "circ": policy.department("circulation-managers").contact,
    }
    want = [(kind, ch, names[who]) for kind, ch, who in expected]
    assert shape(commands(policy, data)) == want


def test_every_key_derives_from_the_interaction_so_a_redelivery_repeats_it(policy: Policy) -> None:
    data = interaction(CRISIS, Channel.SMS, when=OPEN_HOURS)
    first, again = commands(policy, data), commands(policy, data)
    assert [c.idempotency_key for c in first] == [c.idempotency_key for c in again]
    assert [c.idempotency_key for c in first] == [
        derived_id(data.interaction_id, "crisis-alert"),
        derived_id(data.interaction_id, "crisis-resources"),
    ]
    assert {c.conversation_id for c in first} == {data.conversation_id}


def test_overnight_a_transfer_adds_one_ack_keyed_by_conversation(policy: Policy) -> None:
    data = interaction("can i renew my book", Channel.SMS, when=OVERNIGHT)
    out = commands(policy, data)
    acks = [c for c in out if c.kind.value == "after_hours_ack"]
    assert [c.idempotency_key for c in acks] == [
        derived_id(data.conversation_id, "after-hours-ack")
    ]
    assert acks[0].recipient == PHONE


def test_a_patron_without_a_contact_gets_nothing_but_staff_still_are_told(policy: Policy) -> None:
    data = interaction(CRISIS, Channel.SMS, when=OPEN_HOURS, contact=None)
    assert [c.kind.value for c in commands(policy, data)] == ["crisis_alert"]
    assert (
        commands(
            policy, interaction("can i renew my book", Channel.SMS, when=OPEN_HOURS, contact=None)
        )
        == []
    )


@pytest.mark.parametrize(
    ("channel", "contact", "survey"),
    [
        (Channel.SMS, PHONE, True),
        (Channel.EMAIL, "p@example.edu", True),
        (Channel.CHAT, None, False),
        (Channel.SMS, None, False),
    ],
)
def test_a_survey_for_a_closed_ticket_once_per_conversation(
    channel: Channel, contact: str | None, survey: bool
) -> None:
    closed = ConversationClosed(
        conversation_id=f"c-{uuid.uuid4()}",
        channel=channel,
        closed_at=OPEN_HOURS,
        patron_contact=contact,
    )
    command = survey_for(closed)
    assert (command is not None) == survey
    if command is not None:
        assert command.idempotency_key == derived_id(closed.conversation_id, "survey")
        assert (command.channel, command.recipient) == (channel, contact)


def test_a_ticket_closed_unanswered_gets_no_survey() -> None:
    """The survey thanks the patron for a question answered: a ticket closed with no reply
    (spam, a duplicate) asks for none."""
    closed = ConversationClosed(
        conversation_id="c-quiet",
        channel=Channel.EMAIL,
        closed_at=OPEN_HOURS,
        patron_contact="p@example.edu",
        survey=False,
    )
    assert survey_for(closed) is None


def decided(policy: Policy, data: InteractionReceived) -> Decision:
    inp = DecisionInput(channel=data.channel, text=data.text, received_at=data.received_at)
    return policy.decide(inp, online=None)


def test_staff_are_told_of_a_crisis_and_of_a_lost_book_whoever_wrote(policy: Policy) -> None:
    crisis = interaction(CRISIS, Channel.SMS, when=OVERNIGHT, contact=None)
    [alert] = staff_commands(crisis, decided(policy, crisis), policy)
    assert (alert.kind.value, alert.priority.value) == ("crisis_alert", "urgent")
    assert alert.recipient == policy.department("care-team").contact
    lost = interaction(LOST_BOOK, Channel.EMAIL, when=OPEN_HOURS, contact="p@example.edu")
    [email] = staff_commands(lost, decided(policy, lost), policy)
    assert email.context["tcc_id"] == "2223334" and email.context["item"]
    renewal = interaction("can i renew my book", Channel.SMS, when=OPEN_HOURS)
    assert staff_commands(renewal, decided(policy, renewal), policy) == []


def test_patron_messages_in_order_with_one_key_each(policy: Policy) -> None:
    crisis = interaction(CRISIS, Channel.SMS, when=OVERNIGHT)
    assert [
        (k.value, key) for k, key, _ in patron_messages(crisis, decided(policy, crisis), policy)
    ] == [("crisis_resources", derived_id(crisis.interaction_id, "crisis-resources"))]
    renewal = interaction("can i renew my book", Channel.SMS, when=OVERNIGHT)
    messages = patron_messages(renewal, decided(policy, renewal), policy)
    # nobody is Online after hours: the transfer is a ticket, and the acknowledgement alone
    # says when to expect an answer (an outside probe got "staff will text you back within 1
    # business day" and "we will reply when we open Monday at 8:00 AM" for one text)
    assert [k.value for k, _, _ in messages] == ["after_hours_ack"]
    assert messages[-1][2].model_dump()["next_open"]  # when the desk opens, as a patron reads it
    daytime = renewal.model_copy(update={"received_at": OPEN_HOURS})
    assert [k.value for k, _, _ in patron_messages(daytime, decided(policy, daytime), policy)] == [
        "handoff"
    ]


def test_an_emails_automatic_answers_name_the_patrons_email_and_a_texts_do_not(
    policy: Policy,
) -> None:
    """The after-hours acknowledgement, the hand-off and the crisis resources answer the
    patron's email: they carry its Message-ID so the notifier threads them under it."""
    mail = interaction("can i renew my book", Channel.EMAIL, when=OVERNIGHT, contact=None)
    mail = mail.model_copy(
        update={
            "patron": Patron(contact="patron@example.edu"),
            "provider_message_id": "m1@x.edu",
            "subject": "Renewal",
        }
    )
    crisis = mail.model_copy(update={"text": CRISIS, "interaction_id": str(uuid.uuid4())})
    daytime = mail.model_copy(update={"received_at": OPEN_HOURS, "interaction_id": "i-day"})
    text = interaction("can i renew my book", Channel.SMS, when=OVERNIGHT)
    answered: dict[str, str | None] = {}
    for data in (mail, crisis, daytime, text):
        for command in commands(policy, data):
            if command.recipient in (PHONE, "patron@example.edu"):
                answered[f"{data.channel.value} {command.kind.value}"] = command.context.get(
                    "in_reply_to"
                )
                if data.channel is Channel.EMAIL:  # and its subject, to answer under it
                    assert command.context.get("subject") == "Renewal"
    assert answered == {
        "email handoff": "m1@x.edu",
        "email after_hours_ack": "m1@x.edu",
        "email crisis_resources": "m1@x.edu",
        "sms after_hours_ack": None,
    }


@pytest.mark.parametrize("channel", [Channel.CHAT, Channel.SMS, Channel.EMAIL])
def test_the_ack_carries_the_policys_words_for_its_channel(
    policy: Policy, channel: Channel
) -> None:
    """The policy's `after_hours_ack` is what the patron reads (the notifier sends `ack_text`
    as written): editing the policy changes it, and a chat gets its "call 911" line."""
    data = interaction("can i renew my book", channel, when=OVERNIGHT)
    inp = DecisionInput(channel=channel, text=data.text, received_at=data.received_at)
    decision = policy.decide(inp, online=frozenset())
    [ack] = [c for c in commands_for(data, decision, policy) if c.kind.value == "after_hours_ack"]
    text = ack.context["ack_text"]
    template = policy.doc.after_hours_ack[channel]
    before, after = template.split("{next_open}")
    assert text.startswith(before) and text.endswith(after)
    assert "{" not in text and "today at 8:00 AM" in text  # 02:00 on a Wednesday
    if channel is Channel.CHAT:
        assert text.endswith("If you are in danger, call 911.")


def test_a_spanish_ack_is_the_policys_spanish_words(policy: Policy) -> None:
    from services.router.learned import Assessment
    from shared.events import Action

    spanish = Assessment(
        lang="es",
        risk=0.0,
        escalate=False,
        review=False,
        corroborates=False,
        best=(Action.ANSWER, "reference"),
        suggestion=None,
        confidence=0.5,
        model_first=False,
        model_version="clf-test",
    )
    data = interaction("¿puedo renovar mi libro?", Channel.CHAT, when=OVERNIGHT)
    inp = DecisionInput(channel=data.channel, text=data.text, received_at=data.received_at)
    decision = policy.decide(inp, online=frozenset(), seen=spanish)
    [ack] = [c for c in commands_for(data, decision, policy) if c.kind.value == "after_hours_ack"]
    assert ack.context["lang"] == "es"
    assert ack.context["ack_text"].startswith("¡Gracias por su mensaje!")
    assert "hoy a las 8:00 a. m." in ack.context["ack_text"]
    assert ack.context["ack_text"].endswith("llame al 911.")


def test_an_opening_after_a_close_has_an_ack_key_of_its_own(policy: Policy) -> None:
    data = interaction("can i renew my book", Channel.EMAIL, when=OVERNIGHT, contact="a@b.edu")
    inp = DecisionInput(channel=data.channel, text=data.text, received_at=data.received_at)
    decision = policy.decide(inp, online=frozenset())

    def ack_key(opening: str | None) -> str:
        out = commands_for(data, decision, policy, opening=opening)
        [ack] = [c for c in out if c.kind.value == "after_hours_ack"]
        return ack.idempotency_key

    first = ack_key(None)
    assert first == derived_id(data.conversation_id, "after-hours-ack")
    reopened = ack_key("2026-11-24T16:00:00+00:00")
    assert reopened != first and reopened == ack_key("2026-11-24T16:00:00+00:00")


SUNDAY_NIGHT = datetime(2026, 11, 2, 5, 30, tzinfo=UTC)  # Sunday Nov 1, 23:30 in Chicago (CST)
MONDAY_741 = datetime(2026, 11, 2, 13, 41, tzinfo=UTC)  # Monday 07:41, the desk opens at 8
MONDAY_805 = datetime(2026, 11, 2, 14, 5, tzinfo=UTC)  # Monday 08:05, the desk open


def decided_at(
    policy: Policy, data: InteractionReceived, now: datetime
) -> tuple[Decision, list[NotificationRequested]]:
    inp = DecisionInput(
        channel=data.channel, text=data.text, received_at=data.received_at, decided_at=now
    )
    decision = policy.decide(inp, online=None)
    return decision, commands_for(data, decision, policy, now=now)


def test_the_acknowledgement_speaks_from_when_it_is_decided_not_from_the_messages_date(
    policy: Policy,
) -> None:
    """An email that says it was sent on Sunday night, decided on Monday morning (a relay's
    retry, a backlog): "opens tomorrow" would be Tuesday to the patron reading it Monday (an
    outside review saw exactly that), so the opening is named from the decision's moment."""
    data = interaction("Does the library have JSTOR?", Channel.EMAIL, when=SUNDAY_NIGHT)
    on_arrival, _ = decided_at(policy, data, SUNDAY_NIGHT)
    assert on_arrival.after_hours_ack and "opens tomorrow at 8:00 AM" in on_arrival.after_hours_ack
    decision, out = decided_at(policy, data, MONDAY_741)
    [ack] = [c for c in out if c.kind.value == "after_hours_ack"]
    assert ack.context["next_open"] == "Monday at 8:00 AM"
    assert decision.after_hours_ack and "opens today at 8:00 AM" in decision.after_hours_ack
    assert "tomorrow" not in decision.after_hours_ack


def test_a_night_message_decided_once_the_desk_is_open_is_not_told_it_is_closed(
    policy: Policy,
) -> None:
    """Still an overnight ticket (it came in after hours: high priority, on top of the queue),
    but "we're closed right now" would be false when it is read."""
    data = interaction("can i renew my book", Channel.SMS, when=SUNDAY_NIGHT)
    decision, out = decided_at(policy, data, MONDAY_805)
    assert decision.overnight and decision.priority.value == "high"
    assert decision.after_hours_ack is None
    assert "after_hours_ack" not in [c.kind.value for c in out]
    # a clock behind the message's own time (skew) never moves the moment before it
    early, _ = decided_at(policy, data, SUNDAY_NIGHT.replace(hour=1))
    assert early.after_hours_ack and "tomorrow at 8:00 AM" in early.after_hours_ack


def test_an_email_whose_sender_may_be_forged_gets_nothing_unasked(policy: Policy) -> None:
    """A From that failed the receiving system's checks: the college's mail server had sent a
    forger's victim hand-offs and acknowledgements, and the circulation managers a Reply-To
    to the victim (an outside review). Staff still hear of it, warned; a crisis still gets its
    resources and the CARE Team its alert."""
    forged = interaction(LOST_BOOK, Channel.EMAIL, when=OVERNIGHT, contact="victim@my.tccd.edu")
    forged = forged.model_copy(
        update={"patron": forged.patron.model_copy(update={"unverified": True})}
    )
    out = commands(policy, forged)
    assert [c.kind.value for c in out] == ["circulation_email"]
    assert out[0].context["contact_unverified"] is True
    crisis = forged.model_copy(update={"text": CRISIS})
    assert [c.kind.value for c in commands(policy, crisis)] == [
        "crisis_alert",
        "crisis_resources",
    ]
