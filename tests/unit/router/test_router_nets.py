"""The two nets combined: thresholds, safety review, suggestions and Spanish texts, through the
engine with hand-made assessments (no model needed), one case per row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from router_support import OPEN

from services.router.learned import Assessment
from services.router.learned.nets import NET_MODEL, NET_RULES, Verdict, combine
from services.router.policy import Decision, DecisionInput, Policy
from services.router.policy.engine import LEARNED_CRISIS, LEARNED_ROUTE
from services.router.policy.hours import describe_es
from shared.events import Action, Channel, Priority

ANSWER = (Action.ANSWER, "reference")
RENEW = (Action.TRANSFER, "nw-circulation")
CITE = (Action.TRANSFER, "writing-center")


def seen(
    risk: float = 0.01,
    *,
    escalate: bool = False,
    review: bool = False,
    suggestion: tuple[Action, str] | None = None,
    lang: str = "en",
    model_first: bool = False,
    corroborates: bool | None = None,
) -> Assessment:
    """A hand-made assessment (the thresholds are already applied in it; a topic word is
    corroborated where the message is flagged, unless told otherwise)."""
    best = suggestion or ANSWER
    return Assessment(
        lang=lang,
        risk=risk,
        escalate=escalate,
        review=review,
        corroborates=review if corroborates is None else corroborates,
        best=best,
        suggestion=suggestion,
        confidence=0.9 if suggestion else 0.3,
        model_first=model_first,
        model_version="clf-test",
    )


COMBINE_CASES = [
    # rules escalated, rules fell to the default, assessment -> verdict
    (True, False, None, Verdict(None, NET_RULES, False)),
    (True, False, seen(0.99, escalate=True, review=True), Verdict(None, NET_RULES, False)),
    (False, True, None, Verdict(None, None, False)),
    (False, False, seen(0.01), Verdict(None, None, False)),
    (
        False,
        False,
        seen(0.9, escalate=True, review=True),
        Verdict((Action.ESCALATE_CRISIS, "care-team"), NET_MODEL, False),
    ),
    (False, False, seen(0.4, review=True), Verdict(None, NET_MODEL, True)),
    (False, True, seen(0.4, review=True, suggestion=RENEW), Verdict(RENEW, NET_MODEL, True)),
    (False, True, seen(suggestion=RENEW), Verdict(RENEW, None, False)),
    (False, False, seen(suggestion=RENEW), Verdict(None, None, False)),
    (False, False, seen(suggestion=RENEW, model_first=True), Verdict(RENEW, None, False)),
]


@pytest.mark.parametrize(("by_rules", "default", "assessment", "want"), COMBINE_CASES)
def test_combine(
    by_rules: bool, default: bool, assessment: Assessment | None, want: Verdict
) -> None:
    """The evaluation order of nets.py, one row per branch."""
    assert combine(rules_escalated=by_rules, rules_default=default, seen=assessment) == want


def decide(
    policy: Policy,
    text: str,
    assessment: Assessment | None,
    *,
    channel: Channel = Channel.CHAT,
    at: datetime = OPEN,
    online: frozenset[str] | None = None,
) -> Decision:
    """Decide one message with a given assessment."""
    inp = DecisionInput(channel=channel, text=text, received_at=at)
    return policy.decide(inp, online=online, seen=assessment)


def test_model_escalates_what_the_rules_missed(policy: Policy) -> None:
    """A high score escalates under the learned pseudo-rule, urgent, with the care-team text."""
    got = decide(policy, "thanks for everything, bye", seen(0.95, escalate=True, review=True))
    assert got.action is Action.ESCALATE_CRISIS and got.department == "care-team"
    assert got.priority is Priority.URGENT and got.net == NET_MODEL
    assert got.rules[0].rule_id == LEARNED_CRISIS.id and not got.safety_review
    assert got.risk_score == 0.95 and got.model_version == "clf-test"
    assert "CARE Team" in (got.handoff_text or "")


def test_rules_escalation_names_the_rules_net(policy: Policy) -> None:
    """A crisis rule escalates whatever the model says; the model's score is reported."""
    got = decide(policy, "I want to kill myself", seen(0.02))
    assert got.action is Action.ESCALATE_CRISIS and got.net == NET_RULES
    assert got.risk_score == 0.02 and not got.safety_review


TOPIC_CASES = [
    # assessment -> verdict, for a message whose only crisis rules are `corroborate` rules
    (None, Verdict(None, NET_RULES, False)),  # no model: the topic word escalates
    (seen(0.3, review=True), Verdict(None, NET_RULES, False)),  # corroborated
    (seen(0.99, escalate=True, review=True), Verdict(None, NET_RULES, False)),
    (seen(0.05), Verdict(None, None, False, uncorroborated=True)),
    (seen(0.05, suggestion=CITE), Verdict(CITE, None, False, uncorroborated=True)),
    # flagged, not corroborated: the topic is read as a topic and the message flagged
    (seen(0.2, review=True, corroborates=False), Verdict(None, NET_MODEL, True, True)),
    (seen(0.2, corroborates=True), Verdict(None, NET_RULES, False)),  # corroborated only
]


@pytest.mark.parametrize(("assessment", "want"), TOPIC_CASES)
def test_combine_a_topic_word_alone(assessment: Assessment | None, want: Verdict) -> None:
    """A crisis rule on a topic word alone stands when the model's risk reaches its
    corroboration threshold (or there is no model); below it the topic word is read as a
    topic, and the message is still flagged when the risk reaches the review threshold."""
    got = combine(rules_escalated=True, rules_default=True, seen=assessment, topic_only=True)
    assert got == want


def test_an_uncorroborated_topic_word_is_routed_by_the_other_rules(policy: Policy) -> None:
    """ "overdose" in a renewal is a topic when the model reads no crisis: the renewal rule
    routes, and the topic rule is still listed after it (explain shows both)."""
    text = "can i renew the overdose book"
    low = decide(policy, text, seen(0.05))
    assert (low.action, low.department) == RENEW and low.net is None
    assert not low.safety_review and low.priority is Priority.NORMAL
    ids = [h.rule_id for h in low.rules]
    assert ids[0] != "crisis-suicide-topic" and "crisis-suicide-topic" in ids
    high = decide(policy, text, seen(0.3, review=True))
    assert high.action is Action.ESCALATE_CRISIS and high.net == NET_RULES
    assert high.rules[0].rule_id == "crisis-suicide-topic"
    alone = decide(policy, text, None)
    assert alone.action is Action.ESCALATE_CRISIS and alone.net == NET_RULES


def test_a_crisis_statement_is_never_left_to_the_model(policy: Policy) -> None:
    """With a topic word beside a statement of intent, the intent escalates at any risk."""
    got = decide(policy, "i read about overdose and i want to end my life", seen(0.01))
    assert got.action is Action.ESCALATE_CRISIS and got.rules[0].rule_id == "crisis-suicide"


def test_review_routes_normally_and_flags(policy: Policy) -> None:
    """Between the thresholds: the rules' route, flagged for safety review."""
    got = decide(policy, "can i renew my book", seen(0.4, review=True))
    assert (got.action, got.department) == RENEW and got.safety_review
    assert got.net == NET_MODEL and got.priority is Priority.NORMAL


def test_suggestion_replaces_only_the_default(policy: Policy) -> None:
    """The model's route is used where the rules fell through to the catch-all."""
    got = decide(policy, "the thing with my stuff from last week", seen(suggestion=CITE))
    assert (got.action, got.department) == CITE
    assert got.rules[0].rule_id == LEARNED_ROUTE and got.net is None
    assert got.handoff_text and "Reading/Writing Center" in (got.handoff_text or "")
    kept = decide(policy, "can i renew my book", seen(suggestion=CITE))
    assert (kept.action, kept.department) == RENEW


def test_suggestion_for_an_unknown_department_is_ignored(policy: Policy) -> None:
    """A model trained on another policy cannot route to a department this one lacks."""
    got = decide(policy, "hello there", seen(suggestion=(Action.TRANSFER, "campus-moon")))
    assert (got.action, got.department) == ANSWER


def test_without_a_model_the_rules_decide_in_english(policy: Policy) -> None:
    """No assessment: no score, no flag, no net unless a crisis rule fired."""
    got = decide(policy, "can i renew my book", None)
    assert got.lang == "en" and got.risk_score is None and got.net is None
    assert got.model_version is None and got.model_route is None


SPANISH_TEXTS = [
    # channel, route the model suggests, online, a phrase of the Spanish text
    (Channel.CHAT, RENEW, None, "se unirá a este chat"),
    (Channel.SMS, RENEW, None, "NW Circulation"),
    (Channel.EMAIL, (Action.EMAIL_CIRCULATION, "circulation-managers"), None, "2 días hábiles"),
    (Channel.CHAT, (Action.REFER_COUNSELING, "counseling"), None, "TCC Counseling"),
    (Channel.CHAT, RENEW, frozenset[str](), "le abrí un ticket"),
    (Channel.SMS, CITE, frozenset[str](), "Abrimos un ticket"),
]


@pytest.mark.parametrize(("channel", "route", "online", "phrase"), SPANISH_TEXTS)
def test_spanish_messages_get_spanish_texts(
    policy: Policy,
    channel: Channel,
    route: tuple[Action, str],
    online: frozenset[str] | None,
    phrase: str,
) -> None:
    """A Spanish message routed like its English equivalent, with the Spanish hand-off."""
    got = decide(
        policy,
        "necesito ayuda con esto",
        seen(suggestion=route, lang="es", model_first=True),
        channel=channel,
        online=online,
    )
    assert (got.action, got.department) == route and got.lang == "es"
    assert phrase in (got.handoff_text or "")


def test_spanish_crisis_text(policy: Policy) -> None:
    """A Spanish crisis escalated by the model gets the Spanish safety text."""
    got = decide(policy, "ya no quiero seguir", seen(0.97, escalate=True, review=True, lang="es"))
    assert got.action is Action.ESCALATE_CRISIS and "988" in (got.handoff_text or "")
    assert "Su seguridad importa" in (got.handoff_text or "")


def test_spanish_after_hours_ack(policy: Policy) -> None:
    """Overnight Spanish messages are acknowledged in Spanish, with a Spanish opening time."""
    sunday = datetime(2025, 10, 5, 17, 0, tzinfo=UTC)  # Sunday noon in Chicago: closed
    got = decide(policy, "hola, una pregunta", seen(lang="es"), channel=Channel.SMS, at=sunday)
    assert got.overnight and got.lang == "es"
    assert got.after_hours_ack == (
        "TCC Library: ¡Gracias por su mensaje! Cerramos y abrimos mañana a las 8:00 a. m.;"
        " le responderemos entonces. Emergencia: 911."
    )


KEYWORDS = [
    ("AYUDA", "es", "Escriba su pregunta"),
    ("horario", "es", "lun-jue"),
    ("HOURS", "en", "Mon-Thu"),
]


@pytest.mark.parametrize(("word", "lang", "phrase"), KEYWORDS)
def test_sms_keywords_answer_in_their_language(
    policy: Policy, word: str, lang: str, phrase: str
) -> None:
    """A keyword's own language decides the reply's, whatever the model guessed."""
    got = decide(policy, word, seen(lang="en" if lang == "es" else "es"), channel=Channel.SMS)
    assert got.lang == lang and phrase in (got.keyword_reply or "")


OPENINGS_ES = [
    (datetime(2025, 10, 6, 8, 0), 0, "hoy a las 8:00 a. m."),
    (datetime(2025, 10, 7, 8, 0), 1, "mañana a las 8:00 a. m."),
    (datetime(2025, 10, 11, 9, 0), 3, "el sábado a las 9:00 a. m."),
    (datetime(2025, 10, 8, 13, 0), 2, "el miércoles a la 1:00 p. m."),
    (datetime(2025, 10, 8, 12, 30), 2, "el miércoles a las 12:30 p. m."),
]


@pytest.mark.parametrize(("opens", "delta", "want"), OPENINGS_ES)
def test_spanish_opening_times(opens: datetime, delta: int, want: str) -> None:
    """Spanish day names and clock, independent of the process locale ("a la 1:00")."""
    assert describe_es(opens, delta) == want
