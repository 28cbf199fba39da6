"""How a staff reply threads under the patron's email: its subject and its reference headers.

RFC 5322 section 3.6.4: In-Reply-To is the parent's Message-ID; References is the parent's
References followed by the parent's Message-ID. Mail clients thread by these headers, and
Gmail also wants the subject unchanged apart from one "Re:", so the subject is the patron's,
prefixed once, and the ticket tag is added only where there is no patron subject to keep.
Ingest threads the patron's answer back by the tag or by the References (every id the
desk knows of in the conversation, the patron's own Message-IDs among them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TICKET_TAG = "[refdesk #{conversation_id}]"
"""Read back by ingest (services/ingest/providers/text.py) to find the conversation."""

_ANY_TAG = re.compile(r"\[\s*refdesk\s*#\s*[^\]\s]+\s*\]", re.IGNORECASE)
# Reply prefixes mail clients add: Re, RE, Aw (de), Sv (sv/da/no), Antw (nl), Rif (it), Res (pt),
# with an ASCII or full-width colon, optionally counted ("Re[2]:", "Re(2):"); any run of them
# becomes one "Re: ".
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|antw|rif|res)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+", re.IGNORECASE
)
_MSG_ID = re.compile(r"[!-;=?-~]+")  # printable ASCII without spaces and without < >
MAX_REFERENCES = 20
"""Most ids kept in References: the first (the thread's root) and the latest ones."""


def ticket_tag(conversation_id: str) -> str:
    """The subject tag that carries a conversation id."""
    return TICKET_TAG.format(conversation_id=conversation_id)


def tagged(subject: str, conversation_id: str) -> str:
    """``subject`` with this conversation's tag: an existing refdesk tag is replaced in place,
    otherwise the tag is appended."""
    tag = ticket_tag(conversation_id)
    if _ANY_TAG.search(subject):
        return _ANY_TAG.sub(lambda _m: tag, subject, count=1)
    return f"{subject} {tag}".strip()


def has_tag(subject: str) -> bool:
    """Whether a subject carries a refdesk ticket tag (any conversation's)."""
    return _ANY_TAG.search(subject) is not None


def reply_subject(patron_subject: str) -> str:
    """ "Re: " and the patron's subject, without "Re: Re:" and without folding whitespace."""
    base = _REPLY_PREFIX.sub("", " ".join(patron_subject.split()))
    return f"Re: {base}" if base else "Re:"


def msg_id(raw: str | None) -> str | None:
    """``<id>`` for a Message-ID given with or without angle brackets; None when it is not
    one (empty, spaces, or characters a header must not carry)."""
    value = (raw or "").strip().removeprefix("<").removesuffix(">")
    if not value or len(value) > 250 or not _MSG_ID.fullmatch(value):
        return None
    return f"<{value}>"


def references(ids: Iterable[str], in_reply_to: str | None) -> list[str]:
    """The References of a reply: the thread's ids in order, then the parent's, each once;
    ids that are not Message-IDs are dropped, and a long thread keeps its root and newest."""
    parent = msg_id(in_reply_to)
    out = [i for i in dict.fromkeys(msg_id(raw) for raw in ids) if i is not None and i != parent]
    if parent is not None:
        out.append(parent)  # the parent's id ends the list, even if the thread named it before
    if len(out) > MAX_REFERENCES:
        out = [out[0], *out[-(MAX_REFERENCES - 1) :]]
    return out
