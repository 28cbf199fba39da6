"""Every SMS template, filled with long but realistic values, stays GSM-7 and within its budget.

Budgets (segments): handoff 1, after_hours_ack 1, keyword_reply 1 (one idea per message);
survey 2, crisis_resources 2 in English and in Spanish (they carry a link that may be long).
"""

from __future__ import annotations

from typing import Any

import pytest

from services.notifier.messages import render_sms
from services.notifier.segments import sms_segments
from shared.events import NotificationKind as K

BUDGETS: dict[K, int] = {
    K.HANDOFF: 1,
    K.AFTER_HOURS_ACK: 1,
    K.KEYWORD_REPLY: 1,
    K.SURVEY: 2,
    K.CRISIS_RESOURCES: 2,
}
DESK = "TCC Library"

WORST_CASES: list[tuple[K, dict[str, Any]]] = [
    (K.HANDOFF, {"department_name": "Trinity River Campus Library", "topic": "your assignment"}),
    (K.HANDOFF, {"department_name": "Reading/Writing Center", "topic": "your citations"}),
    (
        K.HANDOFF,
        {
            "department_name": "Northwest Campus Circulation Desk",
            "topic": "renewing your laptop loan",
        },
    ),
    (
        K.HANDOFF,
        {
            "department_name": "Northwest Campus Library",
            "handoff_text": "I'm passing your text to a librarian at the Northwest Campus "
            "Library. They'll reply here shortly.",
        },
    ),  # the policy's SMS wording, sent as written
    (
        K.AFTER_HOURS_ACK,
        {
            "next_open": "Wednesday, December 31 at 8:00 AM",
            "hours_url": "https://libguides.tccd.edu/hours",
        },
    ),
    (K.AFTER_HOURS_ACK, {"next_open": "tomorrow at 9:00 AM", "desk_name": "TCC Libraries"}),
    (
        K.KEYWORD_REPLY,
        {"keyword": "HELP", "reply_text": "Text your question to reach a TCC librarian."},
    ),
    (
        K.KEYWORD_REPLY,
        {
            "keyword": "HOURS",
            "reply_text": "The desk is open Mon-Thu 8am-9pm, Fri 8am-5pm, Sat 9am-1pm. "
            "Hours: https://libguides.tccd.edu/hours",
        },
    ),
    (
        K.SURVEY,
        {
            "survey_url": "https://tccd.libanswers.com/survey/index.php?ticket=1234567&code=a1b2c3d4e5f6g7h8"
        },
    ),
    (
        K.CRISIS_RESOURCES,
        {
            "counseling_url": "https://www.tccd.edu/services/support-services/counseling/"
            "counseling-contact/"
        },
    ),
    (
        K.CRISIS_RESOURCES,
        {
            "counseling_url": "https://www.tccd.edu/services/support-services/counseling/"
            "counseling-contact/?campus=trinity-river-east",
            "mhfa_url": "mentalhealthfirstaid.org/take-a-course/what-you-learn",
        },
    ),
    (
        K.CRISIS_RESOURCES,
        {
            "lang": "es",
            "counseling_url": "https://www.tccd.edu/services/support-services/counseling/"
            "counseling-contact/?campus=trinity-river-east",
        },
    ),  # the Spanish text: 3 segments with the policy's link before (322 characters)
]


def test_every_sms_kind_has_a_budget_case() -> None:
    assert {kind for kind, _ in WORST_CASES} == set(BUDGETS)


@pytest.mark.parametrize(("kind", "context"), WORST_CASES)
def test_sms_fits_its_budget(kind: K, context: dict[str, Any]) -> None:
    body = render_sms(kind, {"desk_name": DESK} | context)
    encoding, segments = sms_segments(body)
    assert encoding == "GSM-7", body
    assert segments <= BUDGETS[kind], f"{len(body)} chars: {body}"


COUNSELING = "https://www.tccd.edu/services/support-services/counseling/counseling-contact/"


def test_the_spanish_crisis_text_stays_gsm7_in_two_segments() -> None:
    """An outside probe: "está" made the Spanish crisis text 5 UCS-2 segments (English: 2);
    a review then found it 3 GSM-7 segments (322 characters) against the budget of 2."""
    body = render_sms(
        K.CRISIS_RESOURCES, {"desk_name": DESK, "lang": "es", "counseling_url": COUNSELING}
    )
    assert sms_segments(body) == ("GSM-7", 2), body
    assert len(body) == 276, body
    for kept in ("911", "988", "oprima 2", "AYUDA", COUNSELING):
        assert kept in body


def test_the_spanish_crisis_text_sends_ayuda_to_988_not_to_the_desk() -> None:
    """ "llame o escriba al 988 ... (en español: oprima 2, o escriba AYUDA)" read, in the desk's
    SMS thread, as "reply AYUDA" to the desk, which answers AYUDA with its keyword help. The
    988 Lifeline's Spanish texting is AYUDA texted to 988: the text must say where it goes."""
    body = render_sms(
        K.CRISIS_RESOURCES, {"desk_name": DESK, "lang": "es", "counseling_url": COUNSELING}
    )
    assert "mande AYUDA por texto al 988" in body
    assert "escriba AYUDA" not in body
    # the English name stays out of the Spanish text ("Línea" would force UCS-2)
    assert "Lifeline" not in body and "Línea" not in body


def test_a_spanish_hand_off_goes_as_the_policy_or_staff_wrote_it() -> None:
    """It said "Alguien de TCC Counseling le va a escribir por este medio" whatever the text
    was: the referral's link never reached a Spanish-speaking patron, and a staff member's
    edited hand-off was dropped."""
    text = "Para hablar con TCC Counseling, visite https://www.tccd.edu/counseling"
    body = render_sms(
        K.HANDOFF,
        {
            "desk_name": DESK,
            "lang": "es",
            "department_name": "TCC Counseling",
            "handoff_text": text,
        },
    )
    assert body == text
