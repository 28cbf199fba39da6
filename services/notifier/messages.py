"""Pure message builders: a notification kind and its context become an email, SMS or chat text.

Templates live in ``templates/<channel>/<kind>.<part>.j2`` (``part`` is ``subject``, ``txt`` or
``html`` for email, ``txt`` for sms and chat); editing or adding one needs no code change. A
language other than English is ``<kind>.<lang>.<part>.j2`` (``handoff.es.txt.j2``), used when the
context's ``lang`` asks for it and every part of the kind exists in it. The context each kind
expects is its model in ``shared.events.NOTIFICATION_CONTEXTS`` (documented in
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
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from pydantic import ValidationError

from services.notifier import mime
from services.notifier.errors import InvalidContext, TemplateInvalid, TemplateMissing
from services.notifier.mime import Email
from services.notifier.replies import has_tag, msg_id, references, reply_subject, tagged
from shared.events import (
    NOTIFICATION_CONTEXTS,
    STAFF_FACING,
    Channel,
    CrisisKind,
    NotificationKind,
    Priority,
    derived_id,
    message_id_local,
)

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_MESSAGE_ID_DOMAIN = "refdesk.local"
DEFAULT_LANG = "en"

WRITTEN_BY_STAFF: frozenset[NotificationKind] = frozenset({NotificationKind.STAFF_REPLY})
"""Kinds a person wrote: not marked Auto-Submitted, and an email answers the patron's own."""

FILLED_BY_NOTIFIER: dict[NotificationKind, tuple[str, ...]] = {
    NotificationKind.SURVEY: ("survey_url",)
}
"""Keys a producer may leave out because the notifier fills them (REFDESK_SURVEY_URL), but a
template needs."""

CHANNEL_LABELS = {Channel.CHAT: "Chat", Channel.SMS: "SMS (text message)", Channel.EMAIL: "Email"}
FIELD_LABELS = {"patron_name": "patron name", "tcc_id": "TCC ID", "item": "item name"}
LANGUAGE_LABELS = {"en": "English", "es": "Spanish"}
"""The languages the desk's texts are written in, named for staff (other codes as given)."""
CRISIS_KIND_LABELS: dict[str, str] = {
    CrisisKind.SUICIDE_SELF_HARM.value: "suicide or self-harm",
    CrisisKind.VIOLENCE.value: "violence or a threat",
    CrisisKind.ABUSE.value: "abuse",
    CrisisKind.UNSAFE.value: "feeling unsafe",
    CrisisKind.WARNING_SIGNS.value: "several warning signs together",
    CrisisKind.LEARNED_MODEL.value: "read by the learned model (no crisis rule matched)",
}
"""The kinds of crisis the router names (`CrisisAlertContext.crisis_kinds`), for the CARE Team
(a value a later router adds is shown as given)."""
_LANG = re.compile(r"[a-z]{2,3}")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
"""One bare ASCII address (dot-atom@domain): no display name, comment, quote, list or space."""


def _channel_label(value: str) -> str:
    return CHANNEL_LABELS.get(Channel(value), str(value))


def _language_label(value: str) -> str:
    return LANGUAGE_LABELS.get(value, value)


def _field_label(value: str) -> str:
    return FIELD_LABELS.get(value, value.replace("_", " "))


def _crisis_kind_label(value: str) -> str:
    return CRISIS_KIND_LABELS.get(str(value), str(value).replace("_", " "))


def patron_reply_to(kind: NotificationKind, values: Mapping[str, Any]) -> str | None:
    """The Reply-To of a circulation email about a patron who wrote by email: their address,
    so the managers' reply reaches the patron (sent From the desk, it came back to the desk's
    inbox as a new conversation). None for any other kind or channel, and for a contact that
    is not one bare address (a list, a display name, a line break: never a header of its own),
    and for one that failed the sender checks (`contact_unverified`: it may be a forger's
    victim, who would get the managers' answer about an account they never asked about).
    """
    if kind is not NotificationKind.CIRCULATION_EMAIL or values.get("channel") != Channel.EMAIL:
        return None
    if values.get("contact_unverified"):
        return None
    contact = values.get("patron_contact")
    if not isinstance(contact, str) or len(contact) > 254 or not PLAIN_ADDRESS.fullmatch(contact):
        return None
    return contact


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
    env.filters["language_label"] = _language_label
    env.filters["crisis_kind_label"] = _crisis_kind_label
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


@functools.lru_cache(maxsize=64)
def _names(env: Environment) -> frozenset[str]:
    """Every template name of an environment (loaded once: templates do not reload)."""
    return frozenset(env.list_templates(extensions=["j2"]))


def has_template(kind: NotificationKind, channel: Channel, env: Environment | None = None) -> bool:
    """Whether ``kind`` can be rendered for ``channel``."""
    part = "subject" if channel is Channel.EMAIL else "txt"
    return f"{channel.value}/{kind.value}.{part}.j2" in _names(env or default_templates())


def template_language(
    kind: NotificationKind, channel: Channel, lang: str | None, env: Environment | None = None
) -> str:
    """The language a message is rendered in: ``lang`` when every part of the kind exists in
    it for this channel, else English (a message never mixes two languages)."""
    if not lang or lang == DEFAULT_LANG or not _LANG.fullmatch(lang):
        return DEFAULT_LANG
    names = _names(env or default_templates())
    prefix = f"{channel.value}/{kind.value}."
    parts = [n[len(prefix) :] for n in names if n.startswith(prefix) and n.count(".") == 2]
    if parts and all(f"{prefix}{lang}.{part}" in names for part in parts):
        return lang
    return DEFAULT_LANG


def make_message_id(idempotency_key: str, domain: str = DEFAULT_MESSAGE_ID_DOMAIN) -> str:
    """A Message-ID that is the same every time the same notification is built."""
    return f"<{message_id_local(idempotency_key)}@{domain}>"


def _as_kind(kind: NotificationKind | str) -> NotificationKind:
    try:
        return NotificationKind(kind)
    except ValueError:
        raise InvalidContext(str(kind), ["unknown notification kind"]) from None


def validate_context(kind: NotificationKind, context: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``context`` against the kind's model; return the values templates see."""
    kind = _as_kind(kind)
    schema = NOTIFICATION_CONTEXTS.get(kind)
    if schema is None:
        raise InvalidContext(kind.value, ["no context model for this kind"])
    try:
        model = schema.model_validate(dict(context))
    except ValidationError as exc:
        # include_input=False: the values are student data and must not reach logs or the DLQ.
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '<context>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        raise InvalidContext(str(kind), problems) from None
    values = model.model_dump()
    missing = [f"{key}: required" for key in FILLED_BY_NOTIFIER.get(kind, ()) if not values[key]]
    if missing:
        raise InvalidContext(kind.value, missing)
    return values


def _render(
    env: Environment,
    kind: NotificationKind,
    channel: Channel,
    part: str,
    values: Mapping[str, Any],
    lang: str = DEFAULT_LANG,
) -> str:
    infix = "" if lang == DEFAULT_LANG else f"{lang}."
    name = f"{channel.value}/{kind.value}.{infix}{part}.j2"
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
    env = env or default_templates()
    lang = template_language(kind, channel, values.get("lang"), env)
    return _render(env, kind, channel, "txt", values, lang)


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


class _Header(BaseHeader):
    """A header that folds once per kind of policy (header objects are shared, see below)."""

    def fold(self, *, policy: Any) -> str:
        """`BaseHeader.fold`, remembered per line length, line ending and UTF-8 setting."""
        key = (policy.linesep, policy.max_line_length, policy.utf8, policy.cte_type)
        folded: dict[tuple[Any, ...], str] = self.__dict__.setdefault("_folded", {})
        text = folded.get(key)
        if text is None:
            text = folded[key] = super().fold(policy=policy)
        return text


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, building each header's class once (the stock one builds
    a new class for every header it parses) and each header once per distinct value.

    Parsing a header is most of an email's cost, and most headers repeat from one email to the
    next: the desk's From, To and Reply-To addresses, MIME-Version, each part's Content-Type
    and Content-Transfer-Encoding. A parsed header is immutable (a `str` with its parse
    results), so one object can stand in every message that carries the same value; a value
    seen once (a Message-ID, a subject) is parsed as before and ages out of the cache.
    """

    def __init__(self) -> None:
        super().__init__(base_class=_Header)
        self._built: dict[str, type[BaseHeader]] = {}
        self._parsed = functools.lru_cache(maxsize=2048)(super().__call__)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = super().__getitem__(name)
        return built

    def __call__(self, name: str, value: str) -> BaseHeader:
        if type(value) is not str:  # a header object or a str subclass: parsed as given
            return super().__call__(name, value)
        header: BaseHeader = self._parsed(name, value)
        return header


EMAIL_POLICY: EmailPolicy[EmailMessage] = default_policy.clone(header_factory=_HeaderClasses())
"""`email.policy.default`, with header classes built once and repeated headers parsed once."""


def _subject(
    env: Environment,
    kind: NotificationKind,
    values: Mapping[str, Any],
    lang: str,
    conversation_id: str,
) -> str:
    """A staff reply, and an automatic answer to the patron's email (the after-hours
    acknowledgement, a hand-off, crisis resources), answers under the patron's own subject,
    untouched but for one "Re:" (Gmail threads only under the same subject); every other
    subject comes from its template.
    Patron-facing subjects carry the ticket tag that threads the patron's answer back, unless
    they answer a patron's email (whose Message-ID, in References, threads it back)."""
    answers_email = msg_id(values.get("in_reply_to")) is not None
    if values.get("subject") and (kind in WRITTEN_BY_STAFF or answers_email):
        # a staff reply, or an automatic answer to the patron's email, under their own subject;
        # a first email staff wrote (a text thread turned email) answers nothing: no "Re:"
        if answers_email:
            # a tag already there is this conversation's, or another's (a forward of another
            # patron's thread): it becomes this conversation's, never another patron's
            subject = reply_subject(str(values["subject"]))
            return tagged(subject, conversation_id) if has_tag(subject) else subject
        return tagged(" ".join(str(values["subject"]).split()), conversation_id)
    subject = " ".join(_render(env, kind, Channel.EMAIL, "subject", values, lang).split())
    return subject if kind in STAFF_FACING else tagged(subject, conversation_id)


def _thread(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """In-Reply-To and References of a reply (RFC 5322 3.6.4), when it answers a message."""
    parent = msg_id(values.get("in_reply_to"))
    refs = references(values.get("references") or [], parent)
    threading = [("In-Reply-To", parent)] if parent else []
    return threading + ([("References", " ".join(refs))] if refs else [])


BOUNDARY = f"=_refdesk_{derived_id('boundary', 'alternative')}"
"""Every email's MIME boundary: a resend is byte-for-byte the same email. RFC 2046 asks only
that no part contain it, and the parts are quoted-printable, in which "=_" cannot occur."""


def _title(subject: str) -> mime.Header:
    """The Subject line: as it is when plain, else parsed (encoded words for non-ASCII)."""
    if mime.plain(subject):
        return ("Subject", subject)
    return mime.header(EMAIL_POLICY, "Subject", subject)


def compose_email(
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
) -> Email:
    """An email for ``kind`` with a deterministic Message-ID, as the relay receives it:
    multipart/alternative (text + HTML), or text/plain alone for a kind without an HTML
    template (a staff reply)."""
    kind, priority = _as_kind(kind), Priority(priority)
    if not conversation_id or _UNSAFE_ID.search(conversation_id):
        raise InvalidContext(kind.value, ["conversation_id: empty or contains spaces, [ ] or #"])
    values = validate_context(kind, context)
    values["conversation_id"] = conversation_id
    if kind is NotificationKind.CIRCULATION_EMAIL:
        # the managers answer the patron themselves when the patron wrote by email
        values["patron_reply_to"] = patron_reply_to(kind, values)
        reply_to = values["patron_reply_to"] or reply_to
    env = env or default_templates()
    lang = template_language(kind, Channel.EMAIL, values.get("lang"), env)
    subject = _subject(env, kind, values, lang, conversation_id)
    text = _render(env, kind, Channel.EMAIL, "txt", values, lang)
    has_html = f"email/{kind.value}.html.j2" in _names(env)
    html = _render(env, kind, Channel.EMAIL, "html", values, lang) if has_html else None

    named = [("From", mail_from), ("To", to if isinstance(to, str) else ", ".join(to))]
    named += [("Reply-To", reply_to)] if reply_to else []
    try:
        heads = {name: mime.header(EMAIL_POLICY, name, value) for name, value in named}
    except (ValueError, TypeError, IndexError) as exc:
        raise InvalidContext(kind.value, [f"address header: {type(exc).__name__}"]) from None
    try:
        title = _title(subject)
    except (ValueError, TypeError, IndexError) as exc:
        raise InvalidContext(kind.value, [f"Subject: {type(exc).__name__}"]) from None
    for name, head in heads.items():
        found = mime.addresses(head)
        if not found or any("@" not in a for a in found):
            raise InvalidContext(kind.value, [f"{name}: not an email address"])
    if not mime.DOMAIN.fullmatch(message_id_domain):
        raise InvalidContext(kind.value, ["message_id_domain: not a domain name"])
    message_id = make_message_id(idempotency_key, message_id_domain)
    # the notifier's own values are plain text; the threading ids of an answer to the patron's
    # email came from outside (parsed as headers)
    lines: list[mime.Header] = [title, *heads.values(), ("Message-ID", message_id)]
    if date is not None:
        lines.append(("Date", format_datetime(date)))
    if kind in STAFF_FACING:
        # a circulation follow-up threads under the first email about the conversation,
        # whose Message-ID is derived from its key as this one's is
        earlier = values.get("earlier_key")
        parent = make_message_id(earlier, message_id_domain) if earlier else None
        threading = [("In-Reply-To", parent), ("References", parent)] if parent else []
    else:
        threading = _thread(values)
    lines += [mime.header(EMAIL_POLICY, name, value) for name, value in threading]
    if kind not in WRITTEN_BY_STAFF:
        # RFC 3834: an automatic answer to the patron's email is "auto-replied", any other
        # automatic email "auto-generated"; no autoresponder answers either (Exchange's
        # automatic replies read only the second header)
        # (a survey threads under the patron's email, but answers the closing, not the email)
        answering = threading and kind not in STAFF_FACING and kind is not NotificationKind.SURVEY
        automatic = "auto-replied" if answering else "auto-generated"
        lines += [("Auto-Submitted", automatic), ("X-Auto-Response-Suppress", "All")]
    lines.append(("X-Refdesk-Kind", kind.value))
    if priority is not Priority.NORMAL:
        urgency = "1" if priority is Priority.URGENT else "2"
        lines += [("Importance", "high"), ("X-Priority", urgency)]
    language = lang if lang != DEFAULT_LANG else None
    data, utf8 = mime.assemble(lines, text, html, boundary=BOUNDARY, language=language)
    return Email(
        sender=mime.addresses(heads["From"])[0],
        recipients=tuple(mime.addresses(heads["To"])),
        data=data,
        subject=str(title if isinstance(title, BaseHeader) else subject),
        message_id=message_id,
        text=text,
        utf8=utf8,
        dated=date is not None,
    )


def render_email(
    kind: NotificationKind, context: Mapping[str, Any], **options: Any
) -> EmailMessage:
    """`compose_email` (same options), parsed back into an `EmailMessage` as a mail client
    reads it."""
    return compose_email(kind, context, **options).message()
