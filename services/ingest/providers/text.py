"""Email text helpers: cut quoted history and signatures; the ticket tag carried in subjects."""

from __future__ import annotations

import re
from html.parser import HTMLParser

TICKET_TAG_FORMAT = "[refdesk #{conversation_id}]"
"""The tag the notifier puts in outgoing subjects so a reply finds its conversation."""

CONVERSATION_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}"
"""What a conversation id may look like to travel in a ticket tag (and in chat events)."""
_TICKET_TAG = re.compile(rf"\[\s*refdesk\s*#\s*({CONVERSATION_ID_PATTERN})\s*\]", re.IGNORECASE)

# A line that ends a reply: everything from it on is quoted history or a client footer.
_CUT_LINE = re.compile(
    r"""^\s*(?:
        -{2,}\s*Original\ Message\s*-{2,}
      | _{20,}                                   # Outlook's rule above its header block
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# A mobile or webmail client's footer: it ends a reply, and is dropped from a forward.
_FOOTER = re.compile(
    r"""^\s*(?:
        Sent\ from\ my\ \w[\w\ ]*                # Sent from my iPhone / iPad / Galaxy
      | Sent\ from\ (?:Mail|Outlook|Yahoo\ Mail)\b.*
      | Get\ Outlook\ for\ \w+.*
      | Enviado\ desde\ mi\ \w[\w\ ]*
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# Where a forwarded message begins (Gmail, Apple Mail, Thunderbird; Spanish clients): what
# follows is new to the desk, often the question itself, so it is kept.
_FORWARD_MARKER = re.compile(
    r"""^\s*(?:
        -{2,}\s*(?:Forwarded\ message|Original\ message\ follows|Mensaje\ reenviado)\s*-{2,}
      | Begin\ forwarded\ message:
      | -{2,}\ ?Forwarded\ Message\ ?-{2,}
      | Inicio\ del\ mensaje\ reenviado:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# A subject that says the email forwards another: "Fwd:", "FW:", Spanish "RV:" and "Reenviar:".
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|fw|rv|reenv(?:iar|iado)?)\s*:", re.IGNORECASE)
# "On Mon, Jan 6, 2025 at 9:12 AM Jane <j@x.edu> wrote:", possibly wrapped onto two lines;
# also the Spanish, French, German ("Am ... schrieb ...:"), Portuguese, Italian and Dutch forms.
_ATTRIBUTION_START = re.compile(r"^\s*(?:On|El|Le|Am|Em|Il|Op)\s.*", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(
    r"(?:wrote|escribió|a écrit|schrieb\s.*|escreveu|ha scritto|schreef\s.*)\s*:\s*$",
    re.IGNORECASE,
)
_HEADER_BLOCK = re.compile(r"^\s*\*?(From|De|Von|Da|Van)\s*:\*?\s+\S", re.IGNORECASE)
_HEADER_FOLLOW = re.compile(
    # English, Spanish, Portuguese, German, French, Italian, Dutch: Outlook writes the quoted
    # message's header block in the language of the patron's mail client
    r"^\s*\*?(Sent|Date|To|Subject|Enviado|Enviada|Fecha|Para|Asunto|Assunto|Gesendet|"
    r"Datum|An|Betreff|Envoy[ée]|[ÀA]|Objet|Inviato|Oggetto|Verzonden|Aan|Onderwerp)\s*:",
    re.IGNORECASE,
)
_SIGNATURE_DELIMITER = re.compile(r"^-- $")
"""RFC 3676's signature delimiter: two dashes and a space, alone on a line."""
_BARE_DASHES = re.compile(r"^--\s*$")
"""Two dashes without the space: a signature from a client that trims it, or a patron's own
separator ("Question 1 ... -- Question 2 ..."); a signature only when what follows reads as one."""
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|antw|res|rif|r|wg)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
"""A subject that answers another: "Re:", "RE:", German "AW:", Nordic "SV:", "Antw:", "RES:"."""
SIGNATURE_MAX_LINES = 6
"""The most non-blank lines a signature after bare dashes may have (name, role, campus, phone)."""


def _attribution_length(lines: list[str], i: int) -> int:
    """How many lines (0, 1 or 2) an "On ... wrote:" attribution at line i spans."""
    if not _ATTRIBUTION_START.match(lines[i]):
        return 0
    if _ATTRIBUTION_END.search(lines[i]):
        return 1
    if i + 1 < len(lines) and _ATTRIBUTION_END.search(lines[i + 1]):
        return 2
    return 0


def _is_header_block(lines: list[str], i: int) -> bool:
    """Whether line i starts an Outlook "From: ... Sent: ..." block of a quoted message."""
    if not _HEADER_BLOCK.match(lines[i]):
        return False
    return any(_HEADER_FOLLOW.match(line) for line in lines[i + 1 : i + 4])


STUB = re.compile(
    r"(?i)\b(?:requires?|needs?)\b.{0,30}\bHTML\b|\bHTML[- ](?:capable|compatible|enabled)\b|"
    r"\bview\b.{0,30}\bin (?:a|your) (?:web )?browser\b|does(?: not|n't) support HTML|"
    r"no (?:admite|soporta) HTML"
)
"""What a sender's text part says when it only points at the HTML one ("This message requires
an HTML-capable mail client", "View this email in your browser")."""


def is_stub(plain: str) -> bool:
    """Whether a text part is a stub pointing at the HTML part (short, and says so): the
    question was in the HTML part, and the desk had been shown only the stub (an outside
    review)."""
    return len(plain) <= 300 and bool(STUB.search(plain))


def is_forward(subject: str | None, text: str) -> bool:
    """Whether an email forwards another: its subject says so ("Fwd:", "FW:", "RV:") or its
    text holds a forwarded-message marker outside quoted lines."""
    if _FORWARD_SUBJECT.match(subject or ""):
        return True
    return any(_FORWARD_MARKER.match(line) for line in text.splitlines())


def is_reply(subject: str | None, *, answers: bool) -> bool:
    """Whether an email answers another: it names one (In-Reply-To or References, `answers`)
    or its subject says so ("Re:", "AW:", "SV:")."""
    return answers or bool(_REPLY_SUBJECT.match(subject or ""))


def _signature_follows(lines: list[str], i: int) -> bool:
    """Whether the lines after bare dashes at line i read as a signature: a few short lines,
    none of them a question, up to the end or to quoted history."""
    body: list[str] = []
    for j in range(i + 1, len(lines)):
        line = lines[j]
        if (
            line.lstrip().startswith(">")
            or _attribution_length(lines, j)
            or _CUT_LINE.match(line)
            or _is_header_block(lines, j)
            or _FOOTER.match(line)
        ):
            break
        if line.strip():
            body.append(line.strip())
    return len(body) <= SIGNATURE_MAX_LINES and not any(
        line.endswith("?") or len(line) > 80 for line in body
    )


def split_reply(text: str, *, subject: str | None = None, reply: bool = True) -> str:
    """The new text of an email: quoted history, client footers and signature removed.

    A reply (`reply`: it names the email it answers, or its subject says "Re:") is cut at the
    first "-----Original Message-----", Outlook header block, mobile footer or signature;
    "On ... wrote:" attributions and ">" quoted lines are dropped wherever they are, so a
    bottom-posted answer survives. An email that answers nothing has no history to cut: what
    looks like it is the patron's own ("> QA76.73 .P98", "my professor wrote:", a pasted "From:
    ... Subject:" block), so only a mobile footer and a signature end it. A signature is
    RFC 3676's "-- ", or bare "--" followed by a few short lines that ask nothing. A forwarded
    message (`is_forward`) is new to the desk, often the question itself (an instructor
    forwarding a student's email): from its marker, or with a forwarding subject from its
    Outlook header block, the text is kept as written, and a footer above it is dropped, not
    cut at.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    by_subject = bool(_FORWARD_SUBJECT.match(subject or ""))
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        history = _CUT_LINE.match(line) or _is_header_block(lines, i)
        if _FORWARD_MARKER.match(line) or (by_subject and history):
            kept.extend(rest.rstrip() for rest in lines[i:])
            break
        span = _attribution_length(lines, i) if reply else 0
        if span:
            i += span
            continue
        if _FOOTER.match(line):  # "Sent from my iPhone": what the patron typed after it stays
            i += 1
            continue
        if history and reply:
            break
        if any(k.strip() for k in kept) and (
            _SIGNATURE_DELIMITER.match(line)
            or (_BARE_DASHES.match(line) and _signature_follows(lines, i))
        ):
            i = _after_signature(lines, i)
            continue
        if not (reply and line.lstrip().startswith(">")):
            kept.append(line.rstrip())
        i += 1
    new = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    if not new and reply:
        # the answer is below the history (bottom-posted under an Outlook block, or written
        # into it): nothing is thrown away; what the patron wrote is in there somewhere
        return _without_quotes(lines)
    return new


def _after_signature(lines: list[str], i: int) -> int:
    """Where the text resumes after a signature starting at line i: after its block, up to the
    first blank line or quoted history. A paragraph after it is the patron's own words (a P.S.:
    an outside review's crisis written there never reached the router), so it is kept even
    when it is short enough to pass for more of the signature."""
    j = i + 1
    while j < len(lines) and lines[j].strip() and not _history_starts(lines, j):
        j += 1
    return j


def _history_starts(lines: list[str], j: int) -> bool:
    """Whether quoted history starts at line j (where a signature's lines end)."""
    line = lines[j]
    return bool(
        line.lstrip().startswith(">")
        or _attribution_length(lines, j)
        or _CUT_LINE.match(line)
        or _is_header_block(lines, j)
    )


def _without_quotes(lines: list[str]) -> str:
    """Every line but ">" quotes and "On ... wrote:" attributions, footers dropped: the text of
    a reply whose answer could not be told from its history."""
    kept: list[str] = []
    i = 0
    while i < len(lines):
        span = _attribution_length(lines, i)
        if span:
            i += span
            continue
        line = lines[i]
        if not line.lstrip().startswith(">") and not _FOOTER.match(line):
            kept.append(line.rstrip())
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def format_ticket_tag(conversation_id: str) -> str:
    """The subject tag for a conversation; ValueError if the id would not parse back."""
    if not re.fullmatch(CONVERSATION_ID_PATTERN, conversation_id):
        raise ValueError("conversation id cannot be carried in a ticket tag")
    return TICKET_TAG_FORMAT.format(conversation_id=conversation_id)


def ticket_tag(subject: str | None) -> str | None:
    """The conversation id carried by the (first) ticket tag in `subject`, if any."""
    match = _TICKET_TAG.search(subject or "")
    return match.group(1) if match else None


class _TextExtractor(HTMLParser):
    """Collects an HTML document's visible text, skipping scripts, styles and quoted replies."""

    _SKIP = frozenset({"script", "style", "head", "title", "blockquote"})
    _BLOCK = frozenset(
        {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"}
    )

    def __init__(
        self, *, quotes: bool = False, blockquotes: bool = False, containers: bool = True
    ) -> None:
        """`quotes`: keep everything (a forward); `blockquotes`: keep <blockquote> text but
        stop at a client's quoted-reply container (an email that answers nothing);
        `containers` false: go on past such a container (its <blockquote> still skipped)."""
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []
        self.cut = False
        self._containers = containers
        self._quotes = quotes
        self._blockquotes = quotes or blockquotes
        self._links: list[tuple[str, int]] = []
        """The open links' addresses, each with where its text starts in `parts`."""

    @property
    def _visible(self) -> bool:
        return not self._skipping and not self.cut

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open a skipped element, start a block, or stop at a quoted-reply container."""
        attributes = {name: value or "" for name, value in attrs}
        container = f"{attributes.get('class', '')} {attributes.get('id', '')}"
        if not self._quotes and self._containers and _QUOTE_CONTAINER.search(container):
            self.cut = True
        if tag == "blockquote" and self._blockquotes:
            self.parts.append("\n")
        elif tag in self._SKIP and tag not in _VOID:
            self._skipping.append(tag)
        if tag in self._BLOCK:
            self.parts.append("\n")
        elif tag in _CELLS and self._visible and self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append(" | ")  # a table's cells side by side: "Due | Friday"
        elif tag == "a" and self._visible:
            self._links.append((attributes.get("href", "").strip(), len(self.parts)))
        elif tag == "img" and self._visible and attributes.get("alt", "").strip():
            self.parts.append(f" [image: {' '.join(attributes['alt'].split())}] ")

    def handle_endtag(self, tag: str) -> None:
        """Close a skipped element or end a block; a link's address follows its words."""
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()
        if tag in self._BLOCK:
            self.parts.append("\n")
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            words = "".join(self.parts[start:])
            if self._visible and _WEB_LINK.match(href) and href not in words:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        """Keep visible text until the quoted reply begins."""
        if not self._skipping and not self.cut:
            self.parts.append(data)


_VOID = frozenset({"br", "hr", "img", "meta", "link", "input"})
_CELLS = frozenset({"td", "th"})
_WEB_LINK = re.compile(r"https?://\S+$", re.IGNORECASE)
"""A link whose address the librarian needs beside its words (the article the patron cannot
open); mailto: and tel: links say what they are in their words."""
# Containers mail clients wrap quoted history in: Gmail, Outlook, Apple Mail, Yahoo.
_QUOTE_CONTAINER = re.compile(r"gmail_quote|divRplyFwdMsg|appendonsend|yahoo_quoted|moz-cite")


def html_to_text(html: str, *, subject: str | None = None, reply: bool = True) -> str:
    """Crude HTML to plain text: tags dropped, blocks as lines, a mail client's quoted-reply
    container cut and, in a reply, <blockquote> too (in an email that answers nothing a
    blockquote is the patron's own); of a forward (`is_forward`: Gmail and Apple Mail put the
    forwarded message in those containers) the whole text."""
    whole = _html_text(html, quotes=True)
    if is_forward(subject, whole):
        return whole
    new = _html_text(html, quotes=False, blockquotes=not reply)
    if not new and reply:
        # written below the client's quoted reply (Gmail's "gmail_quote" div, then the answer):
        # the text after the container, its quote skipped, rather than nothing
        return _html_text(html, quotes=False, containers=False)
    return new


def _html_text(
    html: str, *, quotes: bool, blockquotes: bool = False, containers: bool = True
) -> str:
    extractor = _TextExtractor(quotes=quotes, blockquotes=blockquotes, containers=containers)
    extractor.feed(html)
    extractor.close()
    text = "".join(extractor.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
