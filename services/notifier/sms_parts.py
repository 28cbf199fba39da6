"""Splitting an SMS text over Twilio's body limit into parts sent as separate messages.

Twilio refuses a `Body` over 1,600 characters (error 21617), and counts characters outside
GSM-7 (emoji, smart quotes, accented letters) as more than one without saying exactly how
(https://www.twilio.com/docs/api/errors/21617). A part is therefore measured by the most any
of those readings could make of it: per character, its UTF-8 bytes, or 2 for a GSM-7
extension character (escape + character). That is at least its characters, its UTF-16 code
units, its GSM-7 septets and its UTF-8 bytes, so a part within the budget is within the limit
however Twilio counts. English text fills parts to 1,600 characters; text with accents or
emoji gets somewhat shorter parts.

A part ends at the last paragraph break, else line break, else sentence end, else space in
the second half of what fits, else where the budget ends; the whitespace between two parts is
sent with neither. The split is a pure function of the text and the budget, so the part that
comes next after `start` is the same on every attempt (the ledger keeps `start`).
"""

from __future__ import annotations

import re

from services.notifier.segments import GSM7_EXTENSION

SMS_BODY_LIMIT = 1600
"""The Messages API's limit on one message's Body (error 21617 past it)."""
MIN_BUDGET = 160
"""The smallest part budget tried after Twilio still answered 21617 (one GSM-7 segment)."""

_BREAKS = (
    re.compile(r"(?P<gap>\n[ \t]*\n\s*)"),  # a paragraph break
    re.compile(r"(?P<gap>\n\s*)"),  # a line break
    re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*(?P<gap>\s+)"),  # a sentence end
    re.compile(r"(?P<gap>\s+)"),  # a space
)
"""Where a part may end, best first; the `gap` is the whitespace neither part sends."""


def cost(ch: str) -> int:
    """What one character can count for against the limit, at most."""
    return max(len(ch.encode("utf-8")), 2 if ch in GSM7_EXTENSION else 1)


def body_size(text: str) -> int:
    """The most `text` can count for against Twilio's body limit."""
    return sum(cost(ch) for ch in text)


def _fits(text: str, budget: int) -> int:
    """How many leading characters of `text` fit within `budget`."""
    used = 0
    for i, ch in enumerate(text):
        used += cost(ch)
        if used > budget:
            return i
    return len(text)


def next_part(text: str, start: int, budget: int = SMS_BODY_LIMIT) -> tuple[str, int]:
    """The part of `text` that begins at `start` (no whitespace at either end) and where the
    part after it begins (`len(text)` when it is the last)."""
    if budget < max(cost("\U0001f600"), cost("€")):
        raise ValueError(f"a part budget of {budget} cannot hold every character")
    rest = text[start:]
    lead = len(rest) - len(rest.lstrip())
    rest = rest[lead:]
    if body_size(rest.rstrip()) <= budget:
        return rest.rstrip(), len(text)
    fit = _fits(rest, budget)
    window = rest[: fit + 1]  # a gap may begin right after the last character that fits
    for pattern in _BREAKS:
        gaps = [m for m in pattern.finditer(window) if m.start("gap") >= fit // 2]
        if gaps:
            gap = gaps[-1]
            return rest[: gap.start("gap")].rstrip(), start + lead + gap.end("gap")
    return rest[:fit], start + lead + fit


def split(text: str, budget: int = SMS_BODY_LIMIT) -> list[str]:
    """Every part of `text`, in order (one part when it fits)."""
    parts, start = [], 0
    while start < len(text):
        body, start = next_part(text, start, budget)
        if body:
            parts.append(body)
    return parts
