"""Patron-facing texts: placeholders and the one-SMS-segment (GSM-7, 160 chars) limit."""

from __future__ import annotations

import string
from collections.abc import Mapping

RUNTIME_FIELDS = frozenset({"next_open", "hours_exceptions"})
"""Placeholders filled per decision; all others are filled once at load."""

WORST_NEXT_OPEN = {"en": "Wednesday at 12:00 PM", "es": "el miércoles a las 12:00 p. m."}
"""The longest wording of {next_open} per language, used to check SMS length at load."""

WORST_DATED_NEXT_OPEN = {
    "en": "Wednesday, September 30 at 12:00 PM",
    "es": "el miércoles 30 de septiembre a las 12:00 p. m.",
}
"""The same, for a policy with hours exceptions: an opening a week or more away is dated."""

SMS_LIMIT = 160
TWO_SEGMENTS = 306
"""Two GSM-7 segments (153 septets each): a text naming the desk's next exception
({hours_exceptions}) may take them."""
UCS2_LIMIT = 134
"""Two UCS-2 segments (67 characters each): a translation whose correct spelling needs a
character outside GSM-7 (Spanish á, í, ó, ú) may take them; English texts may not."""

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


class _Keep(dict[str, str]):
    """Leaves unknown placeholders as they are, for filling later."""

    def __missing__(self, key: str) -> str:
        """Put the placeholder back untouched."""
        return "{" + key + "}"


def placeholders(template: str) -> list[str]:
    """The {names} a template uses; ValueError when its braces are malformed."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def prerender(template: str, values: Mapping[str, str]) -> str:
    """Fill the load-time placeholders, keeping the runtime ones."""
    return template.format_map(_Keep(values))


def fill_runtime(text: str, next_open: str, exceptions: str = "") -> str:
    """Fill {next_open} and {hours_exceptions} in a prerendered text (the latter may be
    empty: the spaces it leaves at either end are dropped)."""
    if "{" not in text:
        return text
    filled = text.replace("{next_open}", next_open)
    if "{hours_exceptions}" in filled:
        filled = filled.replace("{hours_exceptions}", exceptions).strip()
    return filled


def gsm7_length(text: str) -> int | None:
    """Septets the text takes in GSM-7, or None when a character is outside GSM-7."""
    total = 0
    for ch in text:
        if ch in _GSM7_BASIC:
            total += 1
        elif ch in _GSM7_EXTENDED:
            total += 2
        else:
            return None
    return total


def sms_problem(
    text: str, lang: str = "en", *, dated: bool = False, exceptions: str = ""
) -> str | None:
    """Why a (worst-case filled) text does not fit its SMS budget, or None when it does;
    `dated`: the policy has exceptions, so {next_open} may name a date; `exceptions`: the
    longest {hours_exceptions} note the policy can give."""
    worst = WORST_DATED_NEXT_OPEN if dated else WORST_NEXT_OPEN
    filled = fill_runtime(text, worst.get(lang, worst["en"]), exceptions)
    limit = TWO_SEGMENTS if "{hours_exceptions}" in text else SMS_LIMIT
    length = gsm7_length(filled)
    if length is None and lang != "en":
        if len(filled) > UCS2_LIMIT:
            return f"SMS text is {len(filled)} UCS-2 characters; two segments hold {UCS2_LIMIT}"
        return None
    if length is None:
        bad = sorted({c for c in filled if gsm7_length(c) is None})
        return f"SMS text has characters outside GSM-7: {''.join(bad)!r}"
    if length > limit:
        holds = "two segments hold" if limit == TWO_SEGMENTS else "one segment holds"
        return f"SMS text is {length} GSM-7 characters; {holds} {limit}"
    return None
