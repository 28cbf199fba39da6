"""Planning one interaction without a broker: blocked contacts, automatic mail, safety review
alerts, lang in the patron-facing commands (tiny fakes of the router's ports)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from router_support import OPEN

from services.router.commands import survey_for
from services.router.handlers import PublishPlan, RouterDeps, learned_effect, plan_interaction
from services.router.learned import Assessment
from services.router.policy import Policy
from services.router.policy.decision import Decision
from services.router.presence import PresenceView
from shared.events import (
    Action,
    Automatic,
    Bounce,
    Channel,
    ConversationClosed,
    InteractionReceived,
    NotificationKind,
    NotificationRequested,
    Patron,
    RoutingDecided,
)


class FixedModel:
    """A stand-in for LearnedModel that returns one assessment for every message."""

    def __init__(self, assessment: Assessment) -> None:
        """Keep the assessment to return."""
        self.assessment = assessment
        self.version = assessment.model_version

    def assess(self, *_: Any, **__: Any) -> Assessment:
        """The fixed assessment."""
        return self.assessment


def assessment(
    risk: float, *, escalate: bool = False, review: bool = False, lang: str = "en"
) -> Assessment:
    """An assessment with no suggested route."""
    return Assessment(
        lang=lang,
        risk=risk,
        escalate=escalate,
        review=review,
        corroborates=review,
        best=(Action.ANSWER, "reference"),
        suggestion=None,
        confidence=0.5,
        model_first=False,
        model_version="clf-test",
    )


def interaction(
    text: str, *, blocked: bool = False, channel: Channel = Channel.SMS, at: datetime = OPEN
) -> InteractionReceived:
    """One patron message."""
    return InteractionReceived(
        interaction_id=f"i-{abs(hash((text, blocked, channel, at)))}",
        conversation_id="c-1",
        channel=channel,
        provider="twilio",
        provider_message_id="SM1",
        patron=Patron(contact="+18175550100"),
        text=text,
        received_at=at,
        blocked=blocked,
    )


def automatic_email(
    text: str, kind: Automatic | None, *, at: datetime = OPEN
) -> InteractionReceived:
    """Mail a system sent, into an email conversation."""
    return interaction(text, channel=Channel.EMAIL, at=at).model_copy(
        update={
            "automatic": kind,
            "patron": Patron(contact="ana.gomez@my.tccd.edu"),
            "bounce": Bounce(message_id="a1@refdesk.tccd.edu", status="5.1.1")
            if kind is Automatic.BOUNCE
            else None,
        }
    )


def plan(policy: Policy, data: InteractionReceived, seen: Assessment | None) -> PublishPlan:
    """Plan one interaction with a fixed assessment; the publish plan shows what would be sent."""
    deps = RouterDeps(
        broker=cast(Any, None),
        policies=cast(Any, None),
        presence=PresenceView(),
        db=cast(Any, None),
        model=cast(Any, FixedModel(seen)) if seen is not None else None,
        clock=lambda: data.received_at,  # decided as it arrives
    )
    planned = PublishPlan(policy=policy, done=set())
    plan_interaction(deps, planned, cast(Any, None), data)
    return planned


def sent(planned: PublishPlan) -> list[Any]:
    """The event data queued for publishing, in order."""
    return [event.data for _, event, _ in planned.records]


BLOCKED = [
    # text, assessment, routed?
    ("can i renew my book", None, False),
    # the safety net's review flag reaches the desk too: "I'm outside the library waiting for
    # you" from a blocked harasser had been dropped with nobody told (an outside review)
    ("I'm outside the library waiting for you", assessment(0.5, review=True), True),
    ("I want to kill myself", None, True),
    ("see you all on the other side", assessment(0.97, escalate=True, review=True), True),
]


@pytest.mark.parametrize(("text", "seen", "routed"), BLOCKED)
def test_blocked_contacts_reach_the_desk_only_through_a_crisis_net(
    policy: Policy, text: str, seen: Assessment | None, routed: bool
) -> None:
    """A blocklisted contact's message is routed only when rules or model escalate it or
    flag it for review."""
    data = interaction(text, blocked=True)
    planned = plan(policy, data, seen)
    if routed:
        decided = sent(planned)[0]
        assert isinstance(decided, RoutingDecided)
        assert decided.action is Action.ESCALATE_CRISIS or decided.safety_review
        assert planned.dropped == []
    else:
        assert planned.records == [] and planned.dropped == [data.interaction_id]
    assert data.interaction_id in planned.done


def test_unblocked_message_is_routed_whatever_it_says(policy: Policy) -> None:
    """The same harmless text from a contact not on the blocklist is routed."""
    planned = plan(policy, interaction("can i renew my book"), None)
    assert isinstance(sent(planned)[0], RoutingDecided) and planned.dropped == []


SUNDAY = datetime(2025, 10, 5, 17, 0, tzinfo=UTC)  # the desk is closed: an email would be acked

AUTOMATIC = [
    # text, kind, assessment
    (
        "I am out of the office until January 12 with limited access to email.",
        Automatic.AUTO_REPLY,
        None,
    ),
    ("I am away this week.", Automatic.AUTO_REPLY, assessment(0.5, review=True)),
    # the learned net is not asked about automatic mail: its escalation does not count
    (
        "I am out following a death in the family.",
        Automatic.AUTO_REPLY,
        assessment(0.7, escalate=True, review=True),
    ),
    (
        "I'm sorry to have to inform you that your message could not be delivered.",
        Automatic.BOUNCE,
        assessment(0.7, escalate=True, review=True),
    ),
    # a bounce is a mail system's words: never decided, whatever it quotes
    ("Undelivered: I want to kill myself", Automatic.BOUNCE, None),
]


@pytest.mark.parametrize(("text", "kind", "seen"), AUTOMATIC)
def test_automatic_mail_is_recorded_not_routed_nor_answered(
    policy: Policy, text: str, kind: Automatic, seen: Assessment | None
) -> None:
    """No decision, no acknowledgement after hours, no review alert: the conversation is not
    moved and nobody is written to; the interaction counts as processed."""
    data = automatic_email(text, kind, at=SUNDAY)
    planned = plan(policy, data, seen)
    assert planned.records == []
    assert planned.automatic == [(data.interaction_id, kind.value)]
    assert data.interaction_id in planned.done
    person = plan(policy, data.model_copy(update={"automatic": None, "bounce": None}), seen)
    assert sent(person)  # the same words from a person are routed and answered


def test_a_crisis_rule_on_an_automatic_reply_still_alerts_the_care_team_and_answers_nobody(
    policy: Policy,
) -> None:
    data = automatic_email("I want to kill myself", Automatic.AUTO_REPLY, at=SUNDAY)
    decided, *commands = sent(plan(policy, data, None))
    assert isinstance(decided, RoutingDecided) and decided.action is Action.ESCALATE_CRISIS
    assert [c.kind for c in commands] == [NotificationKind.CRISIS_ALERT]


def test_mail_sent_to_many_is_routed_and_alerted_on_but_answered_by_nobody(
    policy: Policy,
) -> None:
    """An outside probe's list digest (List-Id, Precedence: list) was acknowledged, "Re:
    [campus-all] Weekly digest" to the whole list; RFC 3834 section 2 says not to."""
    digest = automatic_email("Weekly digest: bake sale, open house", None, at=SUNDAY)
    data = digest.model_copy(update={"bulk": True})
    decided, *commands = sent(plan(policy, data, None))
    assert isinstance(decided, RoutingDecided)  # routed and read by staff like any email
    assert commands == []  # no after-hours acknowledgement, no hand-off
    crisis = data.model_copy(update={"text": "I want to kill myself", "interaction_id": "i-9"})
    decided, *commands = sent(plan(policy, crisis, None))
    assert decided.action is Action.ESCALATE_CRISIS
    assert [c.kind for c in commands] == [NotificationKind.CRISIS_ALERT]  # to the CARE Team
    person = sent(plan(policy, digest, None))
    assert [c.kind for c in person[1:]] == [NotificationKind.AFTER_HOURS_ACK]


def test_safety_review_alerts_the_desk_not_the_care_team(policy: Policy) -> None:
    """A flagged message: routed normally, one alert to the desk's address, no crisis alert."""
    planned = plan(policy, interaction("can i renew my book"), assessment(0.4, review=True))
    decided, *commands = sent(planned)
    assert decided.safety_review and decided.net == "model" and decided.risk_score == 0.4
    assert decided.model_version == "clf-test" and decided.action is Action.TRANSFER
    kinds = [c.kind for c in commands]
    assert NotificationKind.SAFETY_REVIEW_ALERT in kinds
    assert NotificationKind.CRISIS_ALERT not in kinds
    alert = commands[kinds.index(NotificationKind.SAFETY_REVIEW_ALERT)]
    assert alert.recipient == policy.desk.contact and alert.channel is Channel.EMAIL
    assert alert.context["conversation_ref"] == "c-1" and "text" not in alert.context


def test_patron_commands_carry_the_language(policy: Policy) -> None:
    """Every patron-facing command of a Spanish message says lang es; next_open in Spanish."""
    sunday = datetime(2025, 10, 5, 17, 0, tzinfo=UTC)
    planned = plan(
        policy,
        interaction("quiero renovar mi libro", at=sunday),
        assessment(0.01, lang="es"),
    )
    decided, *commands = sent(planned)
    assert decided.lang == "es"
    patron = [c for c in commands if isinstance(c, NotificationRequested)]
    assert patron and all(c.context["lang"] == "es" for c in patron)
    ack = next(c for c in patron if c.kind is NotificationKind.AFTER_HOURS_ACK)
    assert ack.context["next_open"] == "mañana a las 8:00 a. m."


EFFECTS = [
    ({"net": "model", "safety_review": True}, "flagged"),
    ({"net": "model", "safety_review": False}, "escalated"),
    ({"net": "rules"}, None),
    ({}, None),
]


@pytest.mark.parametrize(("fields", "effect"), EFFECTS)
def test_learned_effect(fields: dict[str, Any], effect: str | None) -> None:
    """What the learned-net metric counts for a decision."""
    decision = Decision.model_construct(
        action=Action.ANSWER, department="reference", rules=[], **fields
    )
    assert learned_effect(decision) == effect


@pytest.mark.parametrize(("lang", "want"), [("es", "es"), (None, "en"), ("en", "en")])
def test_survey_goes_out_in_the_conversations_language(lang: str | None, want: str) -> None:
    """The survey command carries the language the closed conversation was in."""
    closed = ConversationClosed(
        conversation_id="c-1",
        channel=Channel.SMS,
        closed_at=OPEN,
        patron_contact="+18175550100",
        lang=lang,
    )
    command = survey_for(closed)
    assert command is not None and command.context["lang"] == want


def test_a_new_conversation_quoting_refdesks_own_words_is_answered_by_nobody(
    policy: Policy,
) -> None:
    """A ticket system's acknowledgement (no automatic headers, a new ticket number each time)
    quoting refdesk's after-hours acknowledgement had been acknowledged in turn, without end
    (an outside review). A reply in the conversation's own thread is still answered."""
    quoted = (
        'Your ticket number is 48214. Your message: "Thank you for your email. The reference '
        "desk is closed right now and opens Monday at 8:00 AM; a librarian will reply to your "
        'ticket then. If you are in danger, call 911."'
    )
    robot = automatic_email(quoted, None, at=SUNDAY)
    decided, *commands = sent(plan(policy, robot, None))
    assert isinstance(decided, RoutingDecided) and decided.action is Action.ANSWER
    assert commands == []  # read by staff; nothing sent back to the ticket system
    person = automatic_email("Where can I find nursing journals?", None, at=SUNDAY)
    acked = sent(plan(policy, person, None))
    assert [c.kind for c in acked[1:]] == [NotificationKind.AFTER_HOURS_ACK]  # the control


def test_a_blocked_sender_is_sent_nothing_automatic_but_a_crisiss_resources(
    policy: Policy,
) -> None:
    """A blocked harasser's flagged message at night had been sent the after-hours
    acknowledgement, which the console says a blocked sender never gets (an outside review);
    a blocked patron in crisis still gets the crisis resources."""
    threat = interaction("I'm outside the library waiting for you", blocked=True, at=SUNDAY)
    decided, *commands = sent(plan(policy, threat, assessment(0.5, review=True)))
    assert decided.safety_review
    assert [c.kind for c in commands] == [NotificationKind.SAFETY_REVIEW_ALERT]
    crisis = interaction("I want to kill myself tonight", blocked=True, at=SUNDAY)
    decided, *commands = sent(plan(policy, crisis, None))
    assert decided.action is Action.ESCALATE_CRISIS
    kinds = [c.kind for c in commands]
    assert kinds == [NotificationKind.CRISIS_ALERT, NotificationKind.CRISIS_RESOURCES]
    # the same threat from a number nobody blocked is acknowledged (the control)
    free = interaction("I'm outside the library waiting for you", at=SUNDAY)
    kinds = [c.kind for c in sent(plan(policy, free, assessment(0.5, review=True)))[1:]]
    assert NotificationKind.AFTER_HOURS_ACK in kinds


def test_a_patron_who_begins_with_a_courtesy_refdesk_also_uses_is_answered_as_a_person(
    policy: Policy,
) -> None:
    """ "Thank you for your email." is one of refdesk's sentences, and anyone's: a patron in
    crisis who began with it had been taken for a machine and sent no crisis resources (an
    outside review). A quote of refdesk's distinctive sentences with a crisis of its own still
    gets the resources, never the acknowledgement."""
    polite = automatic_email(
        "Thank you for your email. I can't do this anymore, I want to kill myself tonight.",
        None,
        at=SUNDAY,
    )
    decided, *commands = sent(plan(policy, polite, None))
    assert decided.action is Action.ESCALATE_CRISIS
    assert [c.kind for c in commands] == [
        NotificationKind.CRISIS_ALERT,
        NotificationKind.CRISIS_RESOURCES,
    ]
    asking = automatic_email(
        "Thank you for reaching out. Can I renew 1984 online?", None, at=SUNDAY
    )
    assert NotificationKind.AFTER_HOURS_ACK in [
        c.kind for c in sent(plan(policy, asking, None))[1:]
    ]
    quoted = automatic_email(
        "If you are in danger, call 911.\nI want to kill myself tonight.", None, at=SUNDAY
    )
    decided, *commands = sent(plan(policy, quoted, None))
    assert decided.action is Action.ESCALATE_CRISIS
    assert [c.kind for c in commands] == [
        NotificationKind.CRISIS_ALERT,
        NotificationKind.CRISIS_RESOURCES,
    ]
