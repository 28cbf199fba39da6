"""Mail a system sent rather than a person: automatic replies and delivery status reports.

refdesk's own emails go out from the desk's address, which is also their envelope sender, so
what comes back to it arrives at ingest like a patron's email: out-of-office answers to a staff
reply, and the reports of mail systems that could not deliver one. Marked, such mail is
recorded in its conversation and never answered (`shared.events.Automatic`); unmarked, a
bounce opened a conversation of its own and, after hours, was sent the acknowledgement.

What marks it, read from the headers the sending system wrote:
- a delivery status report (RFC 3464): `Content-Type: multipart/report;
  report-type=delivery-status`, a `From` of MAILER-DAEMON, or Exim's `X-Failed-Recipients`;
- another report (a read receipt, RFC 8098), or `Auto-Submitted: auto-replied` (RFC 3834:
  Gmail's vacation responder, Exchange's automatic replies), `X-Autoreply`, `X-Autorespond`
  or `Precedence: auto_reply`: an automatic reply;
- `Auto-Submitted: auto-generated` or `auto-notified` only on a message that answers another
  (In-Reply-To or References). Without them it may be a web form or a system writing to the
  desk for a person, and is routed as any email is.

What it cannot catch: an automatic reply that declares none of these (some ticket systems and
old autoresponders), which is treated as a patron's message, as before. No subject or wording
is guessed from: a person writing "out of office" is a person.

A bounce's report names the email it is about (the returned message's Message-ID) and the
address that failed (`Final-Recipient`, `Original-Recipient`, the returned `To`); ingest joins
it to the conversation of the email refdesk sent to that address with that Message-ID
(`services.ingest.replies`). The status code is kept (read from the report's fields, or from
the text of a bounce written as plain text, where the remote server's reply quotes it); the
remote server's words are not (they quote addresses and sometimes the message).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Literal

from services.ingest.providers.emails import message_id_list
from shared.events import Automatic, Bounce

HeaderReader = Callable[[str], str | None]
"""A message's topmost header by name, decoded; None when absent."""

_STATUS = re.compile(r"^[245]\.[0-9]{1,3}\.[0-9]{1,3}$")
_TEXT_STATUS = re.compile(
    r"(?:\b[245][0-9]{2}[ -]|\(#)([45]\.[0-9]{1,3}\.[0-9]{1,3})\b"  # "550 5.1.1", "(#5.1.1)"
)
"""An enhanced status code a bounce written as plain text quotes: after the remote server's
three-digit reply (Postfix's "said: 550 5.1.1", Exim's "SMTP error ... 550-5.1.1") or in
qmail's "(#5.1.1)"."""
_FIELD = re.compile(r"(?im)^([A-Za-z-]+)[ \t]*:[ \t]*(.*(?:\r?\n[ \t]+.*)*)$")
_REPORT_FIELDS = frozenset({"action", "status", "final-recipient", "original-recipient"})
_RETURNED_FIELDS = frozenset({"message-id", "to"})
_NO_REPLY_WORDS = frozenset({"auto_reply"})
STATUS_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
"""The content types of a report's machine-readable part (RFC 3464, RFC 6533)."""
RETURNED_PARTS = frozenset({"text/rfc822-headers", "message/global-headers", "message/rfc822"})
"""The content types a report returns the undelivered message's headers in."""
MAX_REPORT_CHARS = 64 * 1024
"""Most of a report's text read for its fields (the machine-readable parts are a few lines)."""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a delivery status report says, addresses kept only for threading."""

    action: Literal["failed", "delayed"] | None  # None: no recipient failed or is delayed
    reported: bool  # whether it had per-recipient Action fields at all
    status: str | None  # RFC 3463, as 5.1.1; the first of the worst action's recipients
    message_id: str | None  # the returned message's, without angle brackets
    recipients: tuple[str, ...]  # the failed addresses, lower-cased; student data

    def bounce(self) -> Bounce:
        """The report as the event carries it: no addresses."""
        return Bounce(
            message_id=self.message_id, status=self.status, action=self.action or "failed"
        )


_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
_LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post")


def is_bulk(header: HeaderReader) -> bool:
    """Whether the headers say the email went to many (RFC 3834 section 2: `Precedence:
    bulk`, `list` or `junk`; RFC 2369 and 2919 list headers): a person may still have written
    it, so it is routed and read, but nothing answers it automatically."""
    if (header("Precedence") or "").strip().lower() in _BULK_PRECEDENCE:
        return True
    return any(header(name) for name in _LIST_HEADERS)


_SUPPRESS_WORDS = frozenset({"all", "oof", "autoreply"})
"""X-Auto-Response-Suppress values (Microsoft's) that ask for no automatic reply."""


def _suppresses_replies(value: str | None) -> bool:
    """Whether an X-Auto-Response-Suppress header asks for no automatic reply."""
    words = {w.strip().lower() for w in (value or "").replace(";", ",").split(",")}
    return bool(words & _SUPPRESS_WORDS)


def automatic_kind(
    header: HeaderReader, *, content_type: str | None, report_type: str | None
) -> Automatic | None:
    """What kind of automatic mail the headers declare, if any (the module's rules)."""
    if content_type == "multipart/report":
        return Automatic.BOUNCE if report_type == "delivery-status" else Automatic.AUTO_REPLY
    sender = header("From") or ""
    addresses = [address.lower() for _, address in getaddresses([sender]) if address]
    if any(address.split("@", 1)[0] == "mailer-daemon" for address in addresses):
        return Automatic.BOUNCE
    if header("X-Failed-Recipients"):
        return Automatic.BOUNCE
    submitted = (header("Auto-Submitted") or "").split(";", 1)[0].strip().lower()
    if submitted == "auto-replied":
        return Automatic.AUTO_REPLY
    if submitted and submitted != "no" and (header("In-Reply-To") or header("References")):
        return Automatic.AUTO_REPLY
    if submitted and submitted != "no" and _suppresses_replies(header("X-Auto-Response-Suppress")):
        # generated and asking for no automatic answer (Exchange's out-of-office sent to no
        # thread, a learning system's noreply notice): refdesk had acknowledged both, and
        # handed one off to a noreply address (an outside review)
        return Automatic.AUTO_REPLY
    if header("X-Autoreply") or header("X-Autorespond"):
        return Automatic.AUTO_REPLY
    if (header("Precedence") or "").strip().lower() in _NO_REPLY_WORDS:
        return Automatic.AUTO_REPLY
    return None


def classify(
    header: HeaderReader,
    *,
    content_type: str | None,
    report_type: str | None,
    report_texts: Callable[[], tuple[str, str]],
) -> tuple[Automatic | None, DeliveryReport | None]:
    """The kind of automatic mail a message is and, for a bounce, what its report says
    (`report_texts`: the report's machine-readable text and the returned headers, read only
    for a bounce). A report in which every recipient was delivered (a success notice) is an
    automatic reply, not a bounce."""
    kind = automatic_kind(header, content_type=content_type, report_type=report_type)
    if kind is not Automatic.BOUNCE:
        return kind, None
    report = read_report(*report_texts())
    if report.reported and report.action is None:
        return Automatic.AUTO_REPLY, None
    return kind, report


def content_type(value: str | None) -> tuple[str | None, str | None]:
    """A Content-Type header's type and its `report-type`, lower-cased (None when absent)."""
    if not value:
        return None, None
    holder = Message()
    holder["Content-Type"] = value
    report_type = holder.get_param("report-type")
    return holder.get_content_type(), str(report_type).lower() if report_type else None


def read_report(status_text: str, returned_headers: str) -> DeliveryReport:
    """The findings of a report from the text of its machine-readable part (RFC 3464's
    per-recipient fields) and the returned message's headers. Either may be the whole body
    when the report came flattened (a provider's parsed form): fields are read line by line,
    each report field from the first text, Message-ID and To from the second."""
    failed: list[tuple[str | None, str | None]] = []  # (status, recipient) per action
    delayed: list[tuple[str | None, str | None]] = []
    actions = 0
    recipient: str | None = None
    status: str | None = None
    action: str | None = None

    def close_block() -> None:
        nonlocal recipient, status, action
        nonlocal actions
        actions += action is not None
        if action == "failed":
            failed.append((status, recipient))
        elif action == "delayed":
            delayed.append((status, recipient))
        recipient = status = action = None

    for name, value in _fields(status_text, _REPORT_FIELDS):
        if name == "final-recipient":
            if recipient is not None or action is not None:
                close_block()
            recipient = _address(value) or recipient
        elif name == "original-recipient":
            recipient = recipient or _address(value)
        elif name == "action":
            if action is not None:
                close_block()
            action = value.split()[0].lower() if value.split() else None
        elif name == "status" and status is None:
            code = value.split()[0] if value.split() else ""
            status = code if _STATUS.match(code) else None
    close_block()
    worst: Literal["failed", "delayed"] | None = (
        "failed" if failed else "delayed" if delayed else None
    )
    chosen = failed or delayed
    returned = dict(_fields(returned_headers, _RETURNED_FIELDS, first=True))
    addresses = [r for _, r in chosen if r]
    addresses += [a.lower() for _, a in getaddresses([returned.get("to", "")]) if "@" in a]
    ids = message_id_list(returned.get("message-id"))
    status_code = next((s for s, _ in chosen if s), None)
    if actions == 0:  # no per-recipient fields: a bounce written as plain text
        quoted = _TEXT_STATUS.search(status_text[:MAX_REPORT_CHARS])
        status_code = quoted.group(1) if quoted else None
    return DeliveryReport(
        action=worst,
        reported=actions > 0,
        status=status_code,
        message_id=ids[0][:255] if ids else None,
        recipients=tuple(dict.fromkeys(addresses)),
    )


def _fields(text: str, wanted: frozenset[str], *, first: bool = False) -> list[tuple[str, str]]:
    """The header-style fields named in `wanted`, in order (each name's first only if
    `first`), from at most MAX_REPORT_CHARS of text; folded lines joined."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for match in _FIELD.finditer(text[:MAX_REPORT_CHARS]):
        name = match.group(1).lower()
        if name not in wanted or (first and name in seen):
            continue
        seen.add(name)
        out.append((name, " ".join(match.group(2).split())))
    return out


def _address(value: str) -> str | None:
    """The address of an `rfc822; someone@example.edu` recipient field, lower-cased."""
    kind, separator, address = value.partition(";")
    address = (address if separator else kind).strip().strip("<>").lower()
    return address if "@" in address and " " not in address else None
