"""Decision details: presence fallback, SMS texts, keywords, extraction, the public API."""

from __future__ import annotations

from datetime import datetime

import pytest
from router_support import OPEN

from services.router.policy import DecisionInput, DepartmentKind, Policy
from services.router.policy.hours import weekly_text
from services.router.policy.texts import gsm7_length, sms_problem
from shared.events import Action, Channel


def decide(
    policy: Policy, text: str, channel: Channel = Channel.CHAT, online: frozenset[str] | None = None
) -> object:
    """Decide one open-hours message."""
    return policy.decide(DecisionInput(channel=channel, text=text, received_at=OPEN), online=online)


def test_fallback_when_nobody_online(policy: Policy) -> None:
    """A live transfer with nobody Online becomes a ticket with a patron message."""
    got = policy.decide(
        DecisionInput(channel=Channel.SMS, text="can i renew my book", received_at=OPEN),
        online=frozenset({"tutoring"}),
    )
    assert got.action is Action.TRANSFER and got.department == "nw-circulation"
    assert got.fallback is not None and "nw-circulation" in got.fallback
    assert got.handoff_text is not None and "1 business day" in got.handoff_text


def test_no_fallback_when_someone_online_or_unknown(policy: Policy) -> None:
    """Someone Online (or presence unknown: None) means a warm hand-off."""
    inp = DecisionInput(channel=Channel.CHAT, text="can i renew my book", received_at=OPEN)
    for online in (frozenset({"nw-circulation"}), None):
        got = policy.decide(inp, online=online)
        assert got.fallback is None
        assert got.handoff_text is not None and "join this chat" in got.handoff_text


def test_crisis_never_waits_on_presence(policy: Policy) -> None:
    """Escalation has no fallback even when nobody at all is Online."""
    inp = DecisionInput(channel=Channel.CHAT, text="i want to die", received_at=OPEN)
    got = policy.decide(inp, online=frozenset())
    assert got.action is Action.ESCALATE_CRISIS and got.fallback is None
    assert got.handoff_text is not None and "988" in got.handoff_text


def test_every_sms_text_fits_one_gsm7_segment(policy: Policy) -> None:
    """Hand-offs, fallbacks, keyword replies and the SMS ack are GSM-7 and at most 160 chars,
    HOURS too when it names a break."""
    texts = [
        policy.department(d.id).handoff[Channel.SMS]
        for d in policy.doc.departments
        if Channel.SMS in d.handoff
    ]
    texts += [d.fallback.message[Channel.SMS] for d in policy.doc.departments if d.fallback]
    texts += [*policy.doc.sms_keywords.values(), policy.doc.after_hours_ack[Channel.SMS]]
    for text in texts:
        filled = text.format(
            **policy.links,
            name="Trinity River Campus Library",
            next_open="Wednesday at 12:00 PM",
            hours_exceptions="Closed Dec 24-Jan 3.",
            weekly_hours=weekly_text(policy.doc.hours.week()),
        )
        assert sms_problem(filled) is None, filled
        length = gsm7_length(filled)
        assert length is not None and length <= 160


def test_sms_decisions_fit_one_segment(policy: Policy) -> None:
    """Decided SMS hand-offs (with links filled in) fit one segment."""
    for text in [
        "kms",
        "my anxiety is bad",
        "faculty: I want to request a purchase",
        "why do i have a library bill",
        "need a tutor",
        "can i renew",
    ]:
        got = policy.decide(
            DecisionInput(channel=Channel.SMS, text=text, received_at=OPEN), online=frozenset()
        )
        assert got.handoff_text is None or gsm7_length(got.handoff_text) is not None
        assert got.handoff_text is None or len(got.handoff_text) <= 160


def test_sms_keywords(policy: Policy) -> None:
    """HOURS texted alone gets its reply; HELP is a keyword Twilio answers itself (decided as
    one, with no reply of refdesk's); a keyword inside a sentence is neither."""
    hours = policy.decide(DecisionInput(channel=Channel.SMS, text="HOURS", received_at=OPEN))
    assert hours.keyword_reply is not None and "Mon-Thu" in hours.keyword_reply
    helped = policy.decide(DecisionInput(channel=Channel.SMS, text="help", received_at=OPEN))
    assert helped.sms_keyword == "HELP" and helped.keyword_reply is None
    chat = policy.decide(DecisionInput(channel=Channel.CHAT, text="HOURS", received_at=OPEN))
    assert chat.keyword_reply is None
    long = policy.decide(
        DecisionInput(channel=Channel.SMS, text="what are your hours", received_at=OPEN)
    )
    assert long.keyword_reply is None


def test_circulation_email_extracts_fields(policy: Policy) -> None:
    """Name, TCC ID and item are extracted; nothing is missing."""
    text = (
        "I lost a library book, what happens now? I'm Ana Gomez, TCC ID 2223334, the book is 1984"
    )
    got = policy.decide(DecisionInput(channel=Channel.CHAT, text=text, received_at=OPEN))
    assert got.action is Action.EMAIL_CIRCULATION
    assert got.guidance.extracted == {
        "patron_name": "Ana Gomez",
        "tcc_id": "2223334",
        "item": "1984",
    }
    assert got.guidance.missing_fields == []


def test_circulation_email_lists_missing_fields(policy: Policy) -> None:
    """Without details, staff are told which fields to ask for."""
    got = policy.decide(
        DecisionInput(channel=Channel.SMS, text="why do i have a library bill", received_at=OPEN)
    )
    assert got.guidance.missing_fields == ["patron_name", "tcc_id", "item"]
    assert "tcc.circulation@tccd.edu" in got.guidance.summary


@pytest.mark.parametrize(
    ("text", "tcc_id"),
    [
        ("my student id is 1234567 and I lost the calculator", "1234567"),
        ("A-number: 7654321, I damaged a laptop", "7654321"),
        ("lost book, call me at 817-555-1234, id 1112223", "1112223"),
    ],
)
def test_tcc_id_variants(policy: Policy, text: str, tcc_id: str) -> None:
    """TCC IDs are found after 'student id', 'A-number' or alone, never in phone numbers."""
    got = policy.decide(DecisionInput(channel=Channel.EMAIL, text=text, received_at=OPEN))
    assert got.guidance.extracted.get("tcc_id") == tcc_id


def test_public_api(policy: Policy) -> None:
    """Departments, links, settings and the version hash are exposed."""
    dept = policy.department("circulation-managers")
    assert dept.contact == "tcc.circulation@tccd.edu" and dept.kind is DepartmentKind.EMAIL
    assert policy.department("care-team").contact.endswith("@tccd.edu")
    assert len({d.id for d in policy.doc.departments}) == 14
    assert policy.links["care_report"].startswith("https://cm.maxient.com/")
    assert len(policy.links) == 6
    assert policy.settings.sms_reply_window_hours == 24
    assert policy.settings.crisis_acknowledge_minutes == 5
    assert len(policy.version) == 16 and int(policy.version, 16) >= 0
    got = decide(policy, "hello")
    assert got.policy_version == policy.version  # type: ignore[attr-defined]


def test_naive_received_at_is_refused() -> None:
    """DecisionInput needs an aware timestamp."""
    with pytest.raises(ValueError, match="timezone-aware"):
        DecisionInput(channel=Channel.CHAT, text="hi", received_at=datetime(2025, 1, 1, 9, 0))


def test_subject_is_matched(policy: Policy) -> None:
    """An email subject counts as part of the message."""
    inp = DecisionInput(
        channel=Channel.EMAIL, text="Please help.", subject="Library fine", received_at=OPEN
    )
    assert policy.decide(inp).action is Action.EMAIL_CIRCULATION


def test_correction_replaces_earlier_intent(policy: Policy) -> None:
    """'Actually I mean' drops what came before it (but never for crisis rules)."""
    got = decide(policy, "How do I cite this? Actually I mean how do I renew it")
    assert got.department == "nw-circulation"  # type: ignore[attr-defined]
