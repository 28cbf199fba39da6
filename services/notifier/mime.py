"""An email as the relay receives it: its envelope and its bytes, assembled once.

Building an `EmailMessage` and flattening it again costs about 1 ms an email (its content
manager picks each part's encoding, then the generator walks the tree back to bytes), most of
what a notification costs the notifier. Here each header is the standard library's own header
object (parsed, checked and folded by `email.policy`) and each body is UTF-8 in
quoted-printable (`binascii.b2a_qp`, RFC 2045), joined once into the bytes sent: 7-bit, lines
under 78 characters, so any relay takes them as they are. `Email.message()` parses them back
for whoever wants the object (previews, tests).
"""

from __future__ import annotations

import binascii
import email
import email.policy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.headerregistry import AddressHeader, BaseHeader, UnstructuredHeader
from email.message import EmailMessage
from email.policy import EmailPolicy

SMTP_POLICY = email.policy.SMTP
"""How headers are folded for the wire: 78 columns, CRLF, non-ASCII as encoded words."""
SMTPUTF8_POLICY = email.policy.SMTPUTF8
"""The same when an address is not ASCII (the relay must offer SMTPUTF8)."""
DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
"""A domain name, as the right side of a Message-ID the notifier makes."""
Header = BaseHeader | tuple[str, str]
"""A parsed header, or a name and a text known to be `plain`."""
_LINE_END = re.compile(r"\r\n|\r|\n")
_TEXT_PART = (
    b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
)


@dataclass(frozen=True)
class Email:
    """A built email: who it is from and to (the SMTP envelope), and its bytes."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    """Headers and body, CRLF line ends, 7-bit unless `utf8`."""
    subject: str
    message_id: str
    text: str
    """The text/plain part as the reader sees it (and the transcript shows)."""
    utf8: bool = False
    """An address is not ASCII: the relay must accept SMTPUTF8."""
    dated: bool = False
    """It carries a Date header; a sender adds one at sending time when it does not."""

    def message(self) -> EmailMessage:
        """The email parsed back into the standard library's object, lines ending in "\\n"
        as a mail client reads them."""
        lines = self.data.replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(lines, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def header(policy: EmailPolicy[EmailMessage], name: str, value: str) -> BaseHeader:
    """`value` parsed as header `name`; ValueError for a line break (header injection) or a
    value the header's grammar refuses."""
    _, parsed = policy.header_store_parse(name, value)
    if not isinstance(parsed, BaseHeader):  # a policy without a header registry
        raise TypeError(f"{name}: the policy built no header object")
    return parsed


def addresses(head: BaseHeader) -> list[str]:
    """The bare addresses (addr-spec) of an address header."""
    if not isinstance(head, AddressHeader):
        return []
    return [a.addr_spec for a in head.addresses]


def plain(text: str) -> bool:
    """Whether ``text`` can stand in a header as it is: printable ASCII words, one space
    apart, none that reads as an encoded word or makes a line too long."""
    return (
        text.isascii()
        and text.isprintable()
        and "=?" not in text
        and " ".join(text.split()) == text
        and all(len(word) < 900 for word in text.split(" "))  # lines stay under 998
    )


def fold(head: Header, policy: EmailPolicy[EmailMessage]) -> str:
    """``head`` as its lines on the wire.

    A plain text (`plain`: a subject, an identifier the notifier made) is wrapped at its
    spaces with the first line filled. The standard folder moves a text that would fit on a
    line of its own to the next line whole ("Subject:" alone, then the text), which Python's
    own parser, and others, read back with a leading space. Anything else (encoded words,
    addresses) is the standard folder's.
    """
    if isinstance(head, BaseHeader):
        if not (isinstance(head, UnstructuredHeader) and plain(str(head))):
            return head.fold(policy=policy)
        name, text = head.name, str(head)
    else:
        name, text = head
    limit, lines, line = policy.max_line_length or 78, [], f"{name}:"
    for word in text.split(" "):
        if len(line) + 1 + len(word) > limit and " " in line:
            lines.append(line)
            line = ""
        line += " " + word
    return policy.linesep.join([*lines, line]) + policy.linesep


def quoted_printable(text: str) -> bytes:
    """``text`` as UTF-8 quoted-printable with CRLF line ends (trailing blanks, a lone dot,
    and "=" are encoded; long lines get soft breaks at 76)."""
    lines = _LINE_END.sub("\r\n", text.rstrip("\r\n")) + "\r\n"
    return binascii.b2a_qp(lines.encode("utf-8"), istext=True)


def assemble(
    headers: Iterable[Header],
    text: str,
    html: str | None,
    *,
    boundary: str,
    language: str | None = None,
) -> tuple[bytes, bool]:
    """The email's bytes: ``headers`` (parsed, or a name and a `plain` text), then text/plain
    alone or multipart/alternative (text, then HTML) with ``boundary``; and whether it needs
    SMTPUTF8.

    The bodies are quoted-printable, which writes every "=" as "=3D", so a boundary that
    begins with "=_" can never occur in them.
    """
    heads = list(headers)
    utf8 = any(not a.isascii() for h in heads if isinstance(h, BaseHeader) for a in addresses(h))
    policy = SMTPUTF8_POLICY if utf8 else SMTP_POLICY
    top = "".join(fold(h, policy) for h in heads).encode("utf-8" if utf8 else "ascii")
    top += b"MIME-Version: 1.0\r\n"
    if language:
        top += b"Content-Language: " + language.encode("ascii") + b"\r\n"
    if html is None:
        return top + _part(b"plain", text), utf8
    mark = b"--" + boundary.encode("ascii")
    top += b'Content-Type: multipart/alternative;\r\n boundary="%s"\r\n\r\n' % mark[2:]
    parts = b"".join(
        mark + b"\r\n" + _part(sub, body) + b"\r\n"
        for sub, body in ((b"plain", text), (b"html", html))
    )
    return top + parts + mark + b"--\r\n", utf8


def _part(subtype: bytes, body: str) -> bytes:
    """One text part: its headers, a blank line, its quoted-printable body."""
    return _TEXT_PART % subtype + b"\r\n" + quoted_printable(body)
