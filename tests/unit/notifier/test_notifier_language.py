"""A command in Spanish is rendered from `<kind>.es.<part>.j2` where every part exists in
Spanish for its channel; otherwise (and for any language without templates) in English."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from jinja2 import Environment

from services.notifier.messages import (
    TEMPLATES_DIR,
    load_templates,
    render_chat,
    render_email,
    render_sms,
    template_language,
)
from shared.events import Channel, HandoffContext, NotificationKind, StaffReplyContext

HANDOFF = HandoffContext(department_name="Centro de Escritura", lang="es")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    """The packaged English templates plus a small Spanish hand-off (SMS and email, not
    chat) and a Spanish survey subject without its body."""
    folder = tmp_path_factory.mktemp("templates") / "t"
    shutil.copytree(TEMPLATES_DIR, folder, ignore=shutil.ignore_patterns("*.es.*"))
    (folder / "sms" / "handoff.es.txt.j2").write_text(
        "{{ desk_name }}: Alguien del {{ department_name }} le escribira aqui.\n"
    )
    (folder / "email" / "handoff.es.subject.j2").write_text(
        "Su pregunta va al {{ department_name }}\n"
    )
    (folder / "email" / "handoff.es.txt.j2").write_text("Hola,\n\n{{ department_name }}.\n")
    (folder / "email" / "handoff.es.html.j2").write_text(
        '{% extends "email/_layout.html.j2" %}{% block body %}<p>Hola</p>{% endblock %}\n'
    )
    (folder / "email" / "survey.es.subject.j2").write_text("Encuesta\n")  # no es txt/html
    return load_templates(folder)


def _mail(env: Environment, kind: NotificationKind, context: dict[str, Any]) -> Any:
    return render_email(
        kind,
        context,
        to="ana@my.tccd.edu",
        mail_from="desk@tccd.edu",
        idempotency_key="k",
        conversation_id="c-1",
        env=env,
    )


def test_spanish_sms_when_its_template_exists(env: Environment) -> None:
    body = render_sms(NotificationKind.HANDOFF, HANDOFF.model_dump(mode="json"), env=env)
    assert body == "TCC Library: Alguien del Centro de Escritura le escribira aqui."


def test_spanish_email_uses_every_spanish_part(env: Environment) -> None:
    msg = _mail(env, NotificationKind.HANDOFF, HANDOFF.model_dump(mode="json"))
    assert msg["Subject"] == "Su pregunta va al Centro de Escritura [refdesk #c-1]"
    assert msg["Content-Language"] == "es"
    html = msg.get_body(("html",)).get_content()
    assert '<html lang="es">' in html and "<p>Hola</p>" in html


def test_english_where_spanish_is_missing_or_incomplete(env: Environment) -> None:
    chat = render_chat(NotificationKind.HANDOFF, HANDOFF.model_dump(mode="json"), env=env)
    assert chat.startswith("Someone from the Centro de Escritura")  # no chat/handoff.es
    survey = {"survey_url": "https://s.tccd.edu/x", "lang": "es"}
    msg = _mail(env, NotificationKind.SURVEY, survey)  # only a Spanish subject: all English
    assert msg["Subject"].startswith("How did we do?")
    assert "Content-Language" not in msg


@pytest.mark.parametrize("lang", ["en", "fr", "", "../es", "ES", "es-MX"])
def test_other_languages_fall_back_to_english(env: Environment, lang: str) -> None:
    assert template_language(NotificationKind.HANDOFF, Channel.SMS, lang, env) == "en"


def test_the_packaged_spanish_templates_are_complete() -> None:
    for channel in Channel:
        for kind in (NotificationKind.HANDOFF, NotificationKind.AFTER_HOURS_ACK):
            assert template_language(kind, channel, "es") == "es"
    assert template_language(NotificationKind.STAFF_REPLY, Channel.EMAIL, "es") == "es"
    assert template_language(NotificationKind.STAFF_REPLY, Channel.SMS, "es") == "en"  # as written


def test_a_spanish_staff_reply_is_signed_in_spanish() -> None:
    reply = StaffReplyContext(
        reply_id="r", staff_id="s", text="Hola Ana, su libro está reservado.", lang="es"
    )
    msg = _mail(load_templates(), NotificationKind.STAFF_REPLY, reply.model_dump(mode="json"))
    assert msg["Subject"] == "Su pregunta a TCC Library [refdesk #c-1]"
    assert msg["Content-Language"] == "es"
    assert "Mostrador virtual de referencia de TCC Library" in msg.get_content()


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_hand_off_that_says_where_to_go_does_not_also_say_it_is_handled(lang: str) -> None:
    """A referral's text points to a form ("handled through Faculty Support Tickets: <link>");
    "You do not need to send your question again" after it told the patron the opposite. The
    default wording, which says someone will reply, keeps the line."""
    referral = HandoffContext(
        department_name="Faculty Support",
        handoff_text="Faculty requests are handled through Faculty Support Tickets: "
        "https://libguides.tccd.edu/faculty",
        lang=lang,
    )
    told = _mail(load_templates(), NotificationKind.HANDOFF, referral.model_dump(mode="json"))
    text = told.get_body(("plain",)).get_content()
    assert "Faculty Support Tickets" in text
    assert "send your question again" not in text and "enviar su pregunta de nuevo" not in text
    default = HandoffContext(department_name="Writing Center", lang=lang)
    told = _mail(load_templates(), NotificationKind.HANDOFF, default.model_dump(mode="json"))
    text = told.get_body(("plain",)).get_content()
    assert "send your question again" in text or "enviar su pregunta de nuevo" in text
