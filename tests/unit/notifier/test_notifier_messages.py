"""Rendering every template: text, HTML, subjects, headers, and the permanent errors."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from services.notifier import mime
from services.notifier.errors import (
    InvalidContext,
    PermanentError,
    TemplateInvalid,
    TemplateMissing,
)
from services.notifier.messages import (
    BOUNDARY,
    EMAIL_POLICY,
    TEMPLATES_DIR,
    compose_email,
    has_template,
    load_templates,
    make_message_id,
    render_chat,
    render_email,
    render_sms,
)
from shared.events import STAFF_FACING, Channel, Priority
from shared.events import NotificationKind as K

COUNSELING = "https://www.tccd.edu/services/support-services/counseling/counseling-contact/"
CARE = "https://cm.maxient.com/reportingform.php?TarrantCCD"

SAMPLES: dict[K, dict[str, Any]] = {
    K.CIRCULATION_EMAIL: {
        "patron_name": "Maria Lopez",
        "tcc_id": "A00123456",
        "item": "Calculus, 8th ed.",
        "question": "I lost the book and got a bill. Can I pay it online?",
        "channel": "sms",
        "conversation_ref": "LA-20931",
        "missing_fields": [],
        "details": {"due_date": "Nov 3"},
    },
    K.SURVEY: {"survey_url": "https://libanswers.tccd.edu/survey?q=42", "patron_name": "Maria"},
    K.HANDOFF: {"department_name": "Reading/Writing Center", "topic": "your citations"},
    K.CRISIS_ALERT: {
        "conversation_ref": "LA-20931",
        "channel": "chat",
        "care_report_url": CARE,
        "urgency": "urgent",
        "campus": "Trinity River",
    },
    K.CRISIS_RESOURCES: {
        "counseling_url": COUNSELING,
        "mhfa_url": "mentalhealthfirstaid.org/take-a-course/what-you-learn",
    },
    K.AFTER_HOURS_ACK: {"next_open": "Monday at 8:00 AM"},
    K.KEYWORD_REPLY: {"keyword": "HELP", "reply_text": "Text your question to reach a librarian."},
    K.CRISIS_REESCALATION: {
        "conversation_ref": "LA-20931",
        "channel": "sms",
        "care_report_url": CARE,
        "minutes_unacknowledged": 15,
        "attempt": 2,
    },
}
EMAIL_KINDS = [
    K.CIRCULATION_EMAIL,
    K.SURVEY,
    K.HANDOFF,
    K.CRISIS_ALERT,
    K.CRISIS_RESOURCES,
    K.AFTER_HOURS_ACK,
    K.CRISIS_REESCALATION,
]  # automated emails: text and HTML (staff replies are tested in test_notifier_replies.py)
SMS_KINDS = [K.SURVEY, K.HANDOFF, K.CRISIS_RESOURCES, K.AFTER_HOURS_ACK, K.KEYWORD_REPLY]
CHAT_KINDS = [K.HANDOFF, K.CRISIS_RESOURCES, K.AFTER_HOURS_ACK]


def _email(kind: K, context: dict[str, Any] | None = None, **kw: Any) -> EmailMessage:
    args: dict[str, Any] = {
        "to": "patron@example.edu",
        "mail_from": "Desk <desk@tccd.edu>",
        "idempotency_key": f"key-{kind}",
        "conversation_id": "c-42",
    } | kw
    return render_email(kind, SAMPLES[kind] if context is None else context, **args)


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_every_template_compiles_and_every_kind_has_its_parts() -> None:
    names = set(load_templates().list_templates(extensions=["j2"]))
    wanted = {f"email/{k}.{part}.j2" for k in EMAIL_KINDS for part in ("subject", "txt", "html")}
    wanted |= {f"sms/{k}.txt.j2" for k in [*SMS_KINDS, K.STAFF_REPLY]}
    wanted |= {f"chat/{k}.txt.j2" for k in [*CHAT_KINDS, K.STAFF_REPLY]}
    wanted |= {"email/staff_reply.subject.j2", "email/staff_reply.txt.j2"}
    assert wanted <= names


@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_email_is_multipart_alternative_with_text_and_html(kind: K) -> None:
    msg = _email(kind)
    text, html = _parts(msg)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] and "\n" not in msg["Subject"]
    assert msg["X-Refdesk-Kind"] == kind.value
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert "{{" not in text and "{%" not in html
    assert html.lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("kind", [K.AFTER_HOURS_ACK, K.HANDOFF, K.CRISIS_RESOURCES])
def test_an_automatic_answer_to_the_patrons_email_threads_under_it(kind: K) -> None:
    """RFC 3834: an automatic response names the message it answers and says auto-replied."""
    msg = _email(kind, {**SAMPLES[kind], "in_reply_to": "<m1@mail.example.edu>"})
    assert (msg["In-Reply-To"], msg["References"]) == (
        "<m1@mail.example.edu>",
        "<m1@mail.example.edu>",
    )
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Subject"].endswith("[refdesk #c-42]")  # the patron's answer threads back too
    # with the patron's subject it answers under it, as a staff reply does (a probe's mail
    # client showed the acknowledgement as a conversation of its own)
    under = _email(
        kind, {**SAMPLES[kind], "in_reply_to": "<m1@mail.example.edu>", "subject": "Census data"}
    )
    assert under["Subject"] == "Re: Census data"
    # a friend forwarding another patron's thread: the other conversation's tag is replaced
    # by this one's (a probe's acknowledgement to the friend carried the other patron's)
    forwarded = _email(
        kind,
        {
            **SAMPLES[kind],
            "in_reply_to": "<m1@mail.example.edu>",
            "subject": "Fwd: Re: Census data [refdesk #email-408d]",
        },
    )
    assert forwarded["Subject"] == "Re: Fwd: Re: Census data [refdesk #c-42]"
    unsafe = _email(kind, {**SAMPLES[kind], "in_reply_to": "x\r\nBcc: a@b.c"})
    assert (unsafe["In-Reply-To"], unsafe["Bcc"]) == (None, None)
    assert unsafe["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_ticket_tag_only_on_patron_facing_subjects(kind: K) -> None:
    subject = _email(kind)["Subject"]
    assert subject.endswith("[refdesk #c-42]") is (kind not in STAFF_FACING)


@pytest.mark.parametrize("kind", SMS_KINDS)
def test_sms_renders(kind: K) -> None:
    body = render_sms(kind, SAMPLES[kind])
    assert body.startswith("TCC Library: ") and "{" not in body and "\n" not in body


@pytest.mark.parametrize("kind", CHAT_KINDS)
def test_chat_renders(kind: K) -> None:
    assert "{{" not in render_chat(kind, SAMPLES[kind])


def test_circulation_email_carries_what_circulation_needs() -> None:
    text, html = _parts(_email(K.CIRCULATION_EMAIL))
    for value in (
        "Maria Lopez",
        "A00123456",
        "Calculus, 8th ed.",
        "pay it online",
        "LA-20931",
        "SMS (text message)",
        "Nothing is missing",
        "due date: Nov 3",
    ):
        assert value in text
    assert "A00123456" in html


def test_circulation_email_lists_what_is_missing() -> None:
    context = SAMPLES[K.CIRCULATION_EMAIL] | {"tcc_id": None, "missing_fields": ["tcc_id", "item"]}
    msg = _email(K.CIRCULATION_EMAIL, context)
    text, _ = _parts(msg)
    assert "Still missing (please ask the patron): TCC ID, item name" in text
    assert "TCC ID:       (not given)" in text
    # the subject names every missing field, as the body does (it said "(incomplete): item not
    # given" with three missing)
    assert msg["Subject"].startswith("Circulation request (missing TCC ID, item name): ")


def test_handoff_is_a_warm_handoff_on_every_channel() -> None:
    ctx = SAMPLES[K.HANDOFF]
    chat = render_chat(K.HANDOFF, ctx)
    assert chat.startswith("Someone from the Reading/Writing Center will join this chat to help")
    assert "Reading/Writing Center will text you here" in render_sms(K.HANDOFF, ctx)
    assert "will reply to this email to help with your citations" in _parts(_email(K.HANDOFF))[0]


def test_handoff_text_from_the_router_wins_in_chat() -> None:
    text = "Someone from Tutoring will join in a moment to set up your appointment."
    assert render_chat(K.HANDOFF, {"department_name": "Tutoring", "handoff_text": text}) == text


def test_crisis_resources_give_988_and_counseling() -> None:
    for body in (
        render_chat(K.CRISIS_RESOURCES, SAMPLES[K.CRISIS_RESOURCES]),
        render_sms(K.CRISIS_RESOURCES, SAMPLES[K.CRISIS_RESOURCES]),
        _parts(_email(K.CRISIS_RESOURCES))[0],
    ):
        assert "call or text 988" in body and COUNSELING in body and "911" in body


def test_crisis_alert_links_the_care_report_and_marks_urgency() -> None:
    msg = _email(K.CRISIS_ALERT, to="care@tccd.edu", priority=Priority.URGENT)
    text, html = _parts(msg)
    assert msg["Subject"].startswith("URGENT: possible student in crisis")
    assert CARE in text and "Channel:      Chat" in text and "Trinity River" in text
    assert 'href="https://cm.maxient.com/reportingform.php?TarrantCCD"' in html
    assert msg["Importance"] == "high" and msg["X-Priority"] == "1"


def test_reescalation_says_how_long_and_which_reminder() -> None:
    msg = _email(K.CRISIS_REESCALATION, to="supervisors@tccd.edu")
    assert "not acknowledged after 15 min" in msg["Subject"]
    assert "(reminder 2)" in _parts(msg)[0]


def test_after_hours_ack_says_when_the_desk_opens() -> None:
    assert "we open Monday at 8:00 AM" in render_sms(K.AFTER_HOURS_ACK, SAMPLES[K.AFTER_HOURS_ACK])
    assert "We open Monday at 8:00 AM" in render_chat(K.AFTER_HOURS_ACK, SAMPLES[K.AFTER_HOURS_ACK])
    assert "the desk opens Monday at 8:00 AM" in _email(K.AFTER_HOURS_ACK)["Subject"]


def test_keyword_help_adds_opt_out_text() -> None:
    assert render_sms(K.KEYWORD_REPLY, SAMPLES[K.KEYWORD_REPLY]).endswith("Reply STOP to opt out.")
    other = render_sms(K.KEYWORD_REPLY, {"keyword": "HOURS", "reply_text": "Open 8-9 M-Th."})
    assert other == "TCC Library: Open 8-9 M-Th."


def test_html_is_escaped_and_text_is_not() -> None:
    context = SAMPLES[K.CIRCULATION_EMAIL] | {"question": "<script>alert(1)</script> & more"}
    text, html = _parts(_email(K.CIRCULATION_EMAIL, context))
    assert "<script>alert(1)</script> & more" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html and "<script>" not in html


def test_message_id_is_deterministic_per_key() -> None:
    first, again = _email(K.SURVEY, idempotency_key="k-1"), _email(K.SURVEY, idempotency_key="k-1")
    other = _email(K.SURVEY, idempotency_key="k-2")
    assert first["Message-ID"] == again["Message-ID"] == make_message_id("k-1")
    assert other["Message-ID"] != first["Message-ID"]
    assert first["Message-ID"].endswith("@refdesk.local>")
    custom = _email(K.SURVEY, idempotency_key="k-1", message_id_domain="refdesk.tccd.edu")
    assert custom["Message-ID"] == make_message_id("k-1", "refdesk.tccd.edu")


def test_date_and_reply_to_when_given() -> None:
    msg = _email(K.SURVEY, date=datetime(2025, 11, 3, 14, 0, tzinfo=UTC), reply_to="ask@tccd.edu")
    assert msg["Date"] == "Mon, 03 Nov 2025 14:00:00 +0000" and msg["Reply-To"] == "ask@tccd.edu"


def test_multiple_recipients() -> None:
    msg = _email(K.CRISIS_ALERT, to=["care@tccd.edu", "dean@tccd.edu"])
    assert [a.addr_spec for a in msg["To"].addresses] == ["care@tccd.edu", "dean@tccd.edu"]


@pytest.mark.parametrize(
    ("kind", "channel"),
    [(K.KEYWORD_REPLY, "chat"), (K.CIRCULATION_EMAIL, "sms"), (K.CRISIS_ALERT, "chat")],
)
def test_missing_template(kind: K, channel: str) -> None:
    render = render_chat if channel == "chat" else render_sms
    with pytest.raises(TemplateMissing):
        render(kind, SAMPLES[kind])
    assert not has_template(kind, Channel(channel))


def test_keyword_reply_has_no_email_template() -> None:
    with pytest.raises(TemplateMissing):
        _email(K.KEYWORD_REPLY)
    assert has_template(K.SURVEY, Channel.EMAIL) and has_template(K.KEYWORD_REPLY, Channel.SMS)


@pytest.mark.parametrize(
    ("kind", "context", "problem"),
    [
        (K.SURVEY, {}, "survey_url"),
        (K.HANDOFF, {"topic": "x"}, "department_name"),
        (K.AFTER_HOURS_ACK, {"next_open": None}, "next_open"),
        (K.SURVEY, {"survey_url": "javascript:alert(1)"}, "survey_url"),
        (K.CRISIS_ALERT, SAMPLES[K.CRISIS_ALERT] | {"channel": "fax"}, "channel"),
        (
            K.CRISIS_REESCALATION,
            SAMPLES[K.CRISIS_REESCALATION] | {"minutes_unacknowledged": "x"},
            "minutes_unacknowledged",
        ),
        (
            K.CIRCULATION_EMAIL,
            SAMPLES[K.CIRCULATION_EMAIL] | {"missing_fields": "tcc_id"},
            "missing_fields",
        ),
    ],
)
def test_invalid_context_names_the_key_not_the_value(
    kind: K, context: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidContext) as info:
        render_sms(kind, context) if kind in SMS_KINDS else _email(kind, context)
    assert problem in str(info.value)
    assert isinstance(info.value, PermanentError)
    assert "alert(1)" not in str(info.value) and "fax" not in str(info.value)


@pytest.mark.parametrize(
    "kw",
    [
        {"to": "patron@example.edu\nBcc: x@evil.test"},
        {"to": "not an address"},
        {"mail_from": ""},
        {"conversation_id": "c 42"},
        {"conversation_id": ""},
    ],
)
def test_bad_headers_are_invalid_context(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidContext):
        _email(K.SURVEY, **kw)


def test_unknown_context_keys_are_ignored() -> None:
    assert render_sms(K.SURVEY, SAMPLES[K.SURVEY] | {"department": "reference"})


def test_templates_are_editable_without_code(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, folder)
    (folder / "sms" / "survey.txt.j2").write_text("Rate us: {{ survey_url }}\n")
    (folder / "chat" / "keyword_reply.txt.j2").write_text("{{ reply_text }}\n")
    env = load_templates(folder)
    assert render_sms(K.SURVEY, {"survey_url": "https://s.tccd.edu/x"}, env=env) == (
        "Rate us: https://s.tccd.edu/x"
    )
    assert render_chat(K.KEYWORD_REPLY, {"reply_text": "hi"}, env=env) == "hi"


def test_template_strictness(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, folder)
    (folder / "sms" / "survey.txt.j2").write_text("{{ survey_link }}\n")
    env = load_templates(folder)
    with pytest.raises(InvalidContext, match="survey_link"):
        render_sms(K.SURVEY, SAMPLES[K.SURVEY], env=env)
    (folder / "sms" / "survey.txt.j2").write_text("{% if %}\n")
    with pytest.raises(TemplateInvalid):
        load_templates(folder)


def test_unknown_kind_is_invalid_context() -> None:
    with pytest.raises(InvalidContext):
        render_sms("no_such_kind", {})  # type: ignore[arg-type]


def test_normal_priority_adds_no_importance_header() -> None:
    assert "Importance" not in _email(K.SURVEY, priority="normal")
    assert _email(K.SURVEY, priority="high")["X-Priority"] == "2"


def test_a_resend_is_the_same_email_byte_for_byte_and_repeated_headers_are_parsed_once() -> None:
    when = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    args: dict[str, Any] = {
        "to": "patron@example.edu",
        "mail_from": "Desk <desk@tccd.edu>",
        "idempotency_key": "key-1",
        "conversation_id": "c-42",
        "date": when,
    }
    first = compose_email(K.CIRCULATION_EMAIL, SAMPLES[K.CIRCULATION_EMAIL], **args)
    again = compose_email(K.CIRCULATION_EMAIL, SAMPLES[K.CIRCULATION_EMAIL], **args)
    other = compose_email(
        K.CIRCULATION_EMAIL, SAMPLES[K.CIRCULATION_EMAIL], **args | {"idempotency_key": "key-2"}
    )
    assert first.data == again.data and first.data != other.data
    assert first.message().get_boundary() == other.message().get_boundary() == BOUNDARY
    # one parsed header object stands in every email that carries the same value
    assert mime.header(EMAIL_POLICY, "To", "patron@example.edu") is mime.header(
        EMAIL_POLICY, "To", "patron@example.edu"
    )
    assert (first.sender, first.recipients) == ("desk@tccd.edu", ("patron@example.edu",))
    assert other.data.count(b"\r\nTo: patron@example.edu\r\n") == 1


def test_a_part_that_contains_the_boundary_is_still_read_whole() -> None:
    sample = SAMPLES[K.CIRCULATION_EMAIL] | {"question": f"what is\n--{BOUNDARY}\n?"}
    text, html = _parts(_email(K.CIRCULATION_EMAIL, context=sample))
    assert f"what is\n--{BOUNDARY}\n?" in text and BOUNDARY in html


@pytest.mark.parametrize("kind", sorted(k for k in SAMPLES if has_template(k, Channel.EMAIL)))
def test_the_email_is_7bit_with_lines_a_relay_takes(kind: K) -> None:
    mail = compose_email(
        kind,
        SAMPLES[kind] | {"lang": "es", "question": "¿Dónde está mi libro? " * 20},
        to="Ana Núñez <ana@my.tccd.edu>",
        mail_from="Desk <desk@tccd.edu>",
        idempotency_key="k",
        conversation_id="c-42",
    )
    assert mail.data.isascii() and not mail.utf8
    assert b"\n" not in mail.data.replace(b"\r\n", b"")  # CRLF line ends only
    assert max(len(line) for line in mail.data.split(b"\r\n")) <= 78
    assert str(mail.message()["To"]) == "Ana Núñez <ana@my.tccd.edu>"
    assert str(mail.message()["Subject"]) == mail.subject  # read back without a leading space


def test_a_non_ascii_address_needs_smtputf8() -> None:
    mail = compose_email(
        K.SURVEY,
        SAMPLES[K.SURVEY],
        to="josé@tccd.edu",
        mail_from="Desk <desk@tccd.edu>",
        idempotency_key="k",
        conversation_id="c-42",
    )
    assert mail.utf8 and mail.recipients == ("josé@tccd.edu",)
    assert "josé@tccd.edu".encode() in mail.data


def test_a_message_id_domain_that_is_not_a_domain_is_refused() -> None:
    with pytest.raises(InvalidContext, match="message_id_domain"):
        _email(K.SURVEY, message_id_domain="tccd.edu>\r\nBcc: all@tccd.edu")
