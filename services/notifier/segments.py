"""How many SMS segments a text costs (GSM 03.38 / 3GPP TS 23.038).

A text made only of GSM-7 characters is sent 7-bit: 160 septets in one segment, 153 per segment
when concatenated (the user-data header takes 7). Extension-table characters cost 2 septets
(escape + char) and are never split across segments. Any other character forces UCS-2: 70 UTF-16
code units in one segment, 67 per segment when concatenated; a surrogate pair is never split.
"""

from __future__ import annotations

from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _units(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _count(units: list[int], single: int, multi: int) -> int:
    if sum(units) <= single:
        return 1
    segments, used = 1, 0
    for cost in units:
        if used + cost > multi:  # an escape pair or surrogate pair moves whole to the next one
            segments, used = segments + 1, 0
        used += cost
    return segments


def sms_segments(text: str) -> tuple[Encoding, int]:
    """The encoding ``text`` will be sent in and how many segments it costs (0 for empty text)."""
    if not text:
        return "GSM-7", 0
    if is_gsm7(text):
        return "GSM-7", _count(_units(text, "GSM-7"), GSM7_SINGLE, GSM7_MULTI)
    return "UCS-2", _count(_units(text, "UCS-2"), UCS2_SINGLE, UCS2_MULTI)
