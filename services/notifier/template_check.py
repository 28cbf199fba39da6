"""The start-up check of the notification templates: every template compiles, and every kind
renders on every channel and in every language it has, with a full context and with only the
required keys (both sides of a template's `{% if %}`). A template with a syntax error or a
misspelt variable would otherwise fail each message that uses it for good, at its first use:
a typo in one SMS template had dead-lettered CARE Team alerts and crisis resources (the
environment failing to load fails every render), while the notifier reported ready."""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Environment, meta, nodes

from services.notifier import messages
from services.notifier.errors import TemplateInvalid
from services.notifier.messages import compose_email, has_template, render_chat, render_sms
from shared.events import NOTIFICATION_CONTEXTS, Channel, NotificationKind
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

SET_BY_NOTIFIER = frozenset({"conversation_id", "patron_reply_to"})
"""Variables the notifier adds to a context (`messages.compose_email`)."""
_LANG_PART = re.compile(r"^[^/]+/[a-z_]+\.(?P<lang>[a-z]{2,3})\.[a-z]+\.j2$")


def check_templates(env: Environment | None = None) -> int:
    """Check every template file on its own (each variable it names is one its kind's
    context has, each filter, test and included template exists: whatever branch names them),
    then render every kind on each channel it has, in each language a file exists for, with
    the required keys alone and with every key; how many renders. TemplateInvalid names the
    first template that fails."""
    env = env or messages.default_templates()  # looked up here: a test may stand in for it
    names = env.list_templates(extensions=["j2"])
    for name in names:
        _check_source(env, name)
    languages = {"en"} | {m["lang"] for m in map(_LANG_PART.match, names) if m}
    rendered = 0
    for kind, required in REQUIRED.items():
        for channel in Channel:
            if not has_template(kind, channel, env):
                continue
            for lang in sorted(languages):
                for context in (required, {**required, **OPTIONAL[kind]}):
                    _render(kind, channel, {**context, "lang": lang}, env)
                    rendered += 1
    return rendered


_KINDS = frozenset(k.value for k in NotificationKind)
_ALL_FIELDS = {f for model in NOTIFICATION_CONTEXTS.values() for f in model.model_fields}


def _check_source(env: Environment, name: str) -> None:
    """One template file read without rendering it: a branch a message rarely takes (a value
    the samples do not hold) is checked as much as any other."""
    assert env.loader is not None
    source = env.loader.get_source(env, name)[0]
    tree = env.parse(source, name)
    kind = name.split("/", 1)[-1].split(".", 1)[0]
    model = NOTIFICATION_CONTEXTS.get(NotificationKind(kind)) if kind in _KINDS else None
    allowed = set(model.model_fields) if model is not None else _ALL_FIELDS
    unknown = meta.find_undeclared_variables(tree) - allowed - SET_BY_NOTIFIER
    if unknown:
        raise TemplateInvalid(name, f"no {kind} context has {', '.join(sorted(unknown))}")
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known = env.filters if isinstance(node, nodes.Filter) else env.tests
        if node.name not in known:
            what = "filter" if isinstance(node, nodes.Filter) else "test"
            raise TemplateInvalid(name, f"no {what} named {node.name!r}")
    for included in meta.find_referenced_templates(tree):
        if included is not None and included not in env.list_templates():
            raise TemplateInvalid(name, f"no template named {included!r}")


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
    except Exception as exc:  # whatever a broken template raises (a type error, a filter's)
        where = f"{channel.value}/{kind.value} ({context['lang']})"
        raise TemplateInvalid(where, f"{type(exc).__name__}: {exc}") from exc
