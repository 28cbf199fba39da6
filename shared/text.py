"""People's text as refdesk keeps it: without the characters that only do harm.

Patrons (and, through the console, staff) may send any byte. A NUL cannot be stored in a
PostgreSQL text or JSONB value at all (one patron email with a NUL in it stopped the status
service's every batch), terminal control sequences and the C1 range mean nothing in a
message, and the bidirectional embedding, override and isolate controls make a name or link
read backwards in the console. A lone surrogate (JSON may escape one) is no character at all
and cannot be encoded to be stored or sent. Tab, line feed and carriage return stay; so do
zero-width joiners and the other format characters emoji and scripts need.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import BeforeValidator

_DROPPED = dict.fromkeys(
    [
        *range(0x00, 0x09),
        0x0B,
        0x0C,
        *range(0x0E, 0x20),
        *range(0x7F, 0xA0),  # DEL and C1
        *range(0x202A, 0x202F),  # LRE, RLE, PDF, LRO, RLO
        *range(0x2066, 0x206A),  # LRI, RLI, FSI, PDI
        *range(0xD800, 0xE000),  # lone surrogates (JSON's "\\ud800"): no UTF-8 encodes them
    ]
)


def printable(value: str) -> str:
    """The text without control characters (but tab and line breaks) or bidirectional
    overrides."""
    return value if value.isprintable() else value.translate(_DROPPED)


def _printable_input(value: Any) -> Any:
    return printable(value) if isinstance(value, str) else value


Text = Annotated[str, BeforeValidator(_printable_input)]
"""A str field of people's text: cleaned by `printable` before its other checks (a reply of
only control characters is then empty, and refused as one)."""


CLEANED = BeforeValidator(_printable_input)
"""`Text`'s cleaning, for a field bounded in its own `Annotated`: `Annotated[str,
StringConstraints(max_length=5000), CLEANED] | None`. As `Text | None` with Field bounds, a
reply too long was refused as "Value should have at most 5000 items after validation"; bound
inside, it is "String should have at most 5000 characters"."""


MARKS_KEPT = 3
"""Combining marks kept on one letter when text is shown: Vietnamese stacks two, some scripts
three; "zalgo" text stacks dozens, which drew over the lines above and below it in the console
and filled a queue preview's 200 characters with one letter (an outside review)."""


def without_mark_stacks(value: str, keep: int = MARKS_KEPT) -> str:
    """The text with at most `keep` combining marks on each character (the rest dropped);
    the same string when no character has more."""
    if value.isascii():
        return value
    out: list[str] = []
    run = 0
    dropped = False
    for char in value:
        if unicodedata.combining(char):
            run += 1
            if run > keep:
                dropped = True
                continue
        else:
            run = 0
        out.append(char)
    return "".join(out) if dropped else value
