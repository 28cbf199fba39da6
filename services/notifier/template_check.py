"""The start-up check of the notification templates: every template compiles, and every kind
renders on every channel and in every language it has, with a full context and with only the
required keys (both sides of a template's `{% if %}`). A template with a syntax error or a
misspelt variable would otherwise fail each message that uses it for good, at its first use:
a typo in one SMS template had dead-lettered CARE Team alerts and crisis resources (the
environment failing to load fails every render), while the notifier reported ready."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

from services.notifier.errors import InvalidContext, TemplateInvalid, TemplateMissing
from services.notifier.messages import compose_email, has_template, render_chat, render_sms
from shared.events import Channel
from shared.events import NotificationKind as K

CARE = "https://cm.maxient.com/reportingform.php?TarrantCCD"
COUNSELING = "https://www.tccd.edu/services/support-services/counseling/counseling-contact/"
CONSOLE = "https://refdesk.example.edu"

REQUIRED: dict[K, dict[str, Any]] = {
    K.CIRCULATION_EMAIL: {
        "question": "Can I pay a fine online?",
        "channel": "sms",
        "conversation_ref": "sms-1",
    },
    K.SURVEY: {"survey_url": "https://libanswers.example.edu/survey"},
    K.HANDOFF: {"department_name": "Reading/Writing Center"},
    K.CRISIS_ALERT: {"conversation_ref": "chat-1", "channel": "chat", "care_report_url": CARE},
    K.CRISIS_RESOURCES: {"counseling_url": COUNSELING},
    K.AFTER_HOURS_ACK: {"next_open": "Monday at 8:00 AM"},
    K.KEYWORD_REPLY: {"reply_text": "Text your question to reach a librarian."},
    K.CRISIS_REESCALATION: {
        "conversation_ref": "chat-1",
        "channel": "chat",
        "care_report_url": CARE,
        "minutes_unacknowledged": 15,
    },
    K.STAFF_REPLY: {"reply_id": "r-1", "staff_id": "jdoe", "text": "Yes, until 9 p.m."},
    K.SAFETY_REVIEW_ALERT: {
        "conversation_ref": "chat-1",
        "channel": "chat",
        "care_report_url": CARE,
    },
}
"""Each kind's required keys: the least a producer sends."""

OPTIONAL: dict[K, dict[str, Any]] = {
    K.CIRCULATION_EMAIL: {
        "patron_name": "Ana",
        "tcc_id": "A00123456",
        "item": "Calculus",
        "patron_contact": "ana@example.edu",
        "contact_unverified": True,
        "missing_fields": ["tcc_id"],
        "details": {"due": "Nov 3"},
        "follow_up": True,
        "earlier_key": "k-0",
    },
    K.SURVEY: {"patron_name": "Ana", "subject": "Renewals", "in_reply_to": "<m@example.edu>"},
    K.HANDOFF: {"topic": "your citations", "handoff_text": "Someone will join you."},
    K.CRISIS_ALERT: {
        "console_url": CONSOLE,
        "campus": "Trinity River",
        "summary": "chat",
        "detected_at": "2026-01-05T15:00:00+00:00",
        "patron_lang": "es",
        "crisis_kinds": ["suicide_self_harm"],
    },
    K.CRISIS_RESOURCES: {
        "mhfa_url": "https://www.mentalhealthfirstaid.org/",
        "crisis_line_name": None,
    },
    K.AFTER_HOURS_ACK: {
        "hours_url": "https://library.example.edu/hours",
        "ack_text": "We open Monday at 8:00 AM.",
    },
    K.KEYWORD_REPLY: {"keyword": "HELP"},
    K.CRISIS_REESCALATION: {
        "console_url": CONSOLE,
        "alerted_at": "2026-01-05T15:00:00+00:00",
        "attempt": 2,
        "summary": "sms",
        "librarian": "J. Doe",
        "patron_lang": "en",
        "crisis_kinds": ["violence"],
        "care_report_filed_by": "J. Doe",
        "care_report_filed_at": "2026-01-05T15:10:00+00:00",
    },
    K.STAFF_REPLY: {
        "subject": "Hours",
        "in_reply_to": "<m@example.edu>",
        "references": ["<m@example.edu>"],
        "staff_name": "J. Doe",
    },
    K.SAFETY_REVIEW_ALERT: {
        "console_url": CONSOLE,
        "department_name": "Reference",
        "detected_at": "2026-01-05T15:00:00+00:00",
        "risk_score": 0.2,
        "patron_lang": "es",
    },
}
"""The optional keys, filled: the other side of each `{% if %}`."""

LANGUAGES = ("en", "es")


def check_templates(env: Environment | None = None) -> int:
    """Render every kind on each channel it has, in each language, with the required keys
    alone and with every key; how many renders. TemplateInvalid names the first template that
    does not compile or render (a misspelt variable, a filter that does not exist)."""
    rendered = 0
    for kind, required in REQUIRED.items():
        for channel in Channel:
            if not has_template(kind, channel, env):
                continue
            for lang in LANGUAGES:
                for context in (required, {**required, **OPTIONAL[kind]}):
                    _render(kind, channel, {**context, "lang": lang}, env)
                    rendered += 1
    return rendered


def _render(kind: K, channel: Channel, context: dict[str, Any], env: Environment | None) -> None:
    try:
        if channel is Channel.EMAIL:
            compose_email(
                kind,
                context,
                to="patron@example.edu",
                mail_from="Desk <desk@example.edu>",
                idempotency_key="template-check",
                conversation_id="template-check",
                env=env,
            )
        elif channel is Channel.SMS:
            render_sms(kind, context, env=env)
        else:
            render_chat(kind, context, env=env)
    except (InvalidContext, TemplateMissing) as exc:
        raise TemplateInvalid(
            f"{channel.value}/{kind.value} ({context['lang']})", str(exc)
        ) from exc
