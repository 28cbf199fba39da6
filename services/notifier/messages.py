"""Pure message builders: a notification kind and its context become an email, SMS or chat text.

Templates live in ``templates/<channel>/<kind>.<part>.j2`` (``part`` is ``subject``, ``txt`` or
``html`` for email, ``txt`` for sms and chat); editing or adding one needs no code change. The
context each kind expects is the pydantic model in ``CONTEXTS`` (documented in
``templates/README.md``); unknown keys are ignored. Nothing here performs network I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.policy import default as default_policy
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from services.notifier.errors import InvalidContext, TemplateInvalid, TemplateMissing
from shared.events import Channel, NotificationKind, Priority, derived_id

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_MESSAGE_ID_DOMAIN = "refdesk.local"

STAFF_FACING: frozenset[NotificationKind] = frozenset(
    {
        NotificationKind.CIRCULATION_EMAIL,
        NotificationKind.CRISIS_ALERT,
        NotificationKind.CRISIS_REESCALATION,
    }
)
"""Kinds mailed to staff; every other kind goes to the patron and carries the ticket tag."""


def _web_url(value: str) -> str:
    # Links land in href attributes, where autoescaping does not stop javascript: URLs.
    if not re.match(r"https?://", value, re.IGNORECASE):
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:(?!\d)", value):
            raise ValueError("must be an http(s) link")
        value = "https://" + value  # the seed writes some links without a scheme
    if not re.fullmatch(r"https?://[^\s/]+\S*", value, re.IGNORECASE):
        raise ValueError("must be an http(s) link without spaces")
    return value


Url = Annotated[str, AfterValidator(_web_url)]


class _Context(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


class CirculationEmailContext(_Context):
    """To circulation managers: a circulation request the desk cannot handle itself."""

    question: str
    channel: Channel
    conversation_ref: str
    patron_name: str | None = None
    tcc_id: str | None = None
    item: str | None = None
    patron_contact: str | None = None
    missing_fields: list[str] = []
    details: dict[str, str] = {}


class SurveyContext(_Context):
    """To the patron after a ticket closes: the rating/comment survey."""

    survey_url: Url
    patron_name: str | None = None
    desk_name: str = "TCC Library"


class HandoffContext(_Context):
    """To the patron: a warm hand-off to another department."""

    department_name: str
    topic: str | None = None
    handoff_text: str | None = None
    desk_name: str = "TCC Library"


class CrisisAlertContext(_Context):
    """To the CARE Team: a patron may be in crisis."""

    conversation_ref: str
    channel: Channel
    care_report_url: Url
    urgency: Priority = Priority.URGENT
    campus: str | None = None
    summary: str | None = None
    detected_at: str | None = None


class CrisisResourcesContext(_Context):
    """To the patron: counseling contacts and a crisis line."""

    counseling_url: Url
    crisis_line: str = "988"
    crisis_line_name: str | None = "Suicide & Crisis Lifeline"
    mhfa_url: Url | None = None
    desk_name: str = "TCC Library"


class AfterHoursAckContext(_Context):
    """To the patron: the desk is closed and when it opens."""

    next_open: str
    hours_url: Url | None = None
    desk_name: str = "TCC Library"


class KeywordReplyContext(_Context):
    """To the patron by SMS: the canned answer to a keyword such as HELP or HOURS."""

    reply_text: str
    keyword: str | None = None
    desk_name: str = "TCC Library"


class CrisisReescalationContext(_Context):
    """To supervisors: a crisis alert has not been acknowledged."""

    conversation_ref: str
    channel: Channel
    care_report_url: Url
    minutes_unacknowledged: int
    alerted_at: str | None = None
    attempt: int = 1
    urgency: Priority = Priority.URGENT
    summary: str | None = None


CONTEXTS: dict[NotificationKind, type[_Context]] = {
    NotificationKind.CIRCULATION_EMAIL: CirculationEmailContext,
    NotificationKind.SURVEY: SurveyContext,
    NotificationKind.HANDOFF: HandoffContext,
    NotificationKind.CRISIS_ALERT: CrisisAlertContext,
    NotificationKind.CRISIS_RESOURCES: CrisisResourcesContext,
    NotificationKind.AFTER_HOURS_ACK: AfterHoursAckContext,
    NotificationKind.KEYWORD_REPLY: KeywordReplyContext,
    NotificationKind.CRISIS_REESCALATION: CrisisReescalationContext,
}


CHANNEL_LABELS = {Channel.CHAT: "chat", Channel.SMS: "SMS (text message)", Channel.EMAIL: "email"}
FIELD_LABELS = {"patron_name": "patron name", "tcc_id": "TCC ID", "item": "item name"}


def _channel_label(value: str) -> str:
    return CHANNEL_LABELS.get(Channel(value), str(value))


def _field_label(value: str) -> str:
    return FIELD_LABELS.get(value, value.replace("_", " "))


def load_templates(folder: Path | None = None) -> Environment:
    """Build the template environment and compile every template, failing on syntax errors."""
    env = Environment(
        loader=FileSystemLoader(folder or TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["channel_label"] = _channel_label
    env.filters["field_label"] = _field_label
    for name in env.list_templates(extensions=["j2"]):
        try:
            env.get_template(name)
        except TemplateSyntaxError as exc:
            raise TemplateInvalid(name, f"line {exc.lineno}: {exc.message}") from exc
    return env


@functools.cache
def default_templates() -> Environment:
    """The packaged templates, loaded on first use."""
    return load_templates()


def has_template(kind: NotificationKind, channel: Channel, env: Environment | None = None) -> bool:
    """Whether ``kind`` can be rendered for ``channel``."""
    part = "subject" if channel is Channel.EMAIL else "txt"
    name = f"{channel.value}/{kind.value}.{part}.j2"
    return name in (env or default_templates()).list_templates()


def make_message_id(idempotency_key: str, domain: str = DEFAULT_MESSAGE_ID_DOMAIN) -> str:
    """A Message-ID that is the same every time the same notification is built."""
    return f"<{derived_id('notifier', 'message-id', idempotency_key)}@{domain}>"


def _as_kind(kind: NotificationKind | str) -> NotificationKind:
    try:
        return NotificationKind(kind)
    except ValueError:
        raise InvalidContext(str(kind), ["unknown notification kind"]) from None


def validate_context(kind: NotificationKind, context: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``context`` against the kind's model; return the values templates see."""
    try:
        model = CONTEXTS[_as_kind(kind)].model_validate(dict(context))
    except ValidationError as exc:
        # include_input=False: the values are student data and must not reach logs or the DLQ.
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '<context>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        raise InvalidContext(str(kind), problems) from None
    return model.model_dump()


def _render(
    env: Environment, kind: NotificationKind, channel: Channel, part: str, values: Mapping[str, Any]
) -> str:
    name = f"{channel.value}/{kind.value}.{part}.j2"
    try:
        template = env.get_template(name)
    except TemplateNotFound:
        raise TemplateMissing(kind.value, channel.value, name) from None
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(name, f"line {exc.lineno}: {exc.message}") from exc
    try:
        return template.render(values).strip()
    except UndefinedError as exc:
        raise InvalidContext(kind.value, [f"{name}: {exc.message}"]) from None


def _short(
    kind: NotificationKind, channel: Channel, context: Mapping[str, Any], env: Environment | None
) -> str:
    kind = _as_kind(kind)
    values = validate_context(kind, context)
    return _render(env or default_templates(), kind, channel, "txt", values)


def render_sms(
    kind: NotificationKind, context: Mapping[str, Any], *, env: Environment | None = None
) -> str:
    """The SMS body for ``kind``; count its cost with ``segments.sms_segments``."""
    return _short(kind, Channel.SMS, context, env)


def render_chat(
    kind: NotificationKind, context: Mapping[str, Any], *, env: Environment | None = None
) -> str:
    """The chat message for ``kind``."""
    return _short(kind, Channel.CHAT, context, env)


_UNSAFE_ID = re.compile(r"[\s\[\]#]")


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, building each header's class once: the stock one builds
    a new class for every header it parses, a good part of an email's cost."""

    def __init__(self) -> None:
        super().__init__()
        self._built: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = super().__getitem__(name)
        return built


EMAIL_POLICY: EmailPolicy[EmailMessage] = default_policy.clone(header_factory=_HeaderClasses())
"""`email.policy.default`, with the header classes built once."""


def render_email(
    kind: NotificationKind,
    context: Mapping[str, Any],
    *,
    to: str | Sequence[str],
    mail_from: str,
    idempotency_key: str,
    conversation_id: str,
    message_id_domain: str = DEFAULT_MESSAGE_ID_DOMAIN,
    priority: Priority = Priority.NORMAL,
    date: datetime | None = None,
    reply_to: str | None = None,
    env: Environment | None = None,
) -> EmailMessage:
    """A multipart/alternative (text + HTML) email for ``kind`` with a deterministic Message-ID."""
    kind, priority = _as_kind(kind), Priority(priority)
    if not conversation_id or _UNSAFE_ID.search(conversation_id):
        raise InvalidContext(kind.value, ["conversation_id: empty or contains spaces, [ ] or #"])
    values = validate_context(kind, context)
    values["conversation_id"] = conversation_id
    env = env or default_templates()
    subject = " ".join(_render(env, kind, Channel.EMAIL, "subject", values).split())
    if kind not in STAFF_FACING:
        subject = f"{subject} [refdesk #{conversation_id}]"
    text = _render(env, kind, Channel.EMAIL, "txt", values)
    html = _render(env, kind, Channel.EMAIL, "html", values)

    msg = EmailMessage(policy=EMAIL_POLICY)
    try:
        msg["Subject"] = subject
        msg["From"] = mail_from
        msg["To"] = to if isinstance(to, str) else ", ".join(to)
        if reply_to:
            msg["Reply-To"] = reply_to
    except (ValueError, TypeError, IndexError) as exc:
        raise InvalidContext(kind.value, [f"address header: {type(exc).__name__}"]) from None
    for header in ("From", "To", "Reply-To"):
        if header not in msg:
            continue
        addresses = msg[header].addresses
        if not addresses or any("@" not in a.addr_spec for a in addresses):
            raise InvalidContext(kind.value, [f"{header}: not an email address"])
    msg["Message-ID"] = make_message_id(idempotency_key, message_id_domain)
    if date is not None:
        msg["Date"] = format_datetime(date)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: autoresponders must not answer it
    msg["X-Refdesk-Kind"] = kind.value
    if priority is not Priority.NORMAL:
        msg["Importance"] = "high"
        msg["X-Priority"] = "1" if priority is Priority.URGENT else "2"
    msg.set_content(text + "\n")
    msg.add_alternative(html + "\n", subtype="html")
    return msg
