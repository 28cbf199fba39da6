"""What the classifier reads of a message: character n-grams and words of a folded text, plus
markers for the channel and the faculty role.

Training (train.py) and inference (model.py) both call `grams`, so the two cannot drift.
Two blocks, each L2-normalised on its own: character n-grams (with the markers), and words
and word pairs (prefixed with WORD so they never collide with an n-gram).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import pairwise

from shared.events import Channel, PatronRole

MIN_N, MAX_N = 2, 5
"""n-gram lengths, taken inside word boundaries (each word padded with one space)."""

WORD = "\x02"
"""Prefix of word and word-pair features (the second block)."""

WORDS = re.compile(r"\w+")


def _fold_table() -> dict[int, str | None]:
    """One str.translate table: apostrophes dropped, digits as 0, accented Latin letters as
    their base letters (NFKD without the combining marks), stray combining marks dropped."""
    table: dict[int, str | None] = {ord(c): None for c in "'\u2018\u2019\u02bc`"}
    table.update({ord(d): "0" for d in "123456789"})
    for code in range(0xC0, 0x250):
        base = unicodedata.normalize("NFKD", chr(code))
        base = "".join(c for c in base if not unicodedata.combining(c))
        if base != chr(code):
            table[code] = base
    table.update(dict.fromkeys(range(0x300, 0x370)))
    return table


_FOLD = _fold_table()

# markers are whole features, never split into n-grams (the \x01 cannot occur in folded text)
ROLE_FACULTY = "\x01faculty"
CHANNEL_MARK = {ch: f"\x01{ch.value}" for ch in Channel}


def fold(text: str) -> str:
    """Lower case, accents and apostrophes removed, digits as 0, whitespace single.

    Patrons write "contraseña" and "contrasena", "está" and "esta", "can't" and "cant":
    folding makes each pair one set of n-grams. Digits carry IDs and phone numbers, not meaning.
    """
    return " ".join(text.lower().translate(_FOLD).split())


CACHED_WORD = 30
"""Words up to this length have their n-grams cached (most words of most messages repeat)."""


@lru_cache(maxsize=16_384)
def _cached_word_grams(word: str) -> tuple[str, ...]:
    """word_grams, cached for words up to CACHED_WORD characters (a link or a pasted ID is
    not worth a cache entry)."""
    return word_grams(word)


def word_grams(word: str) -> tuple[str, ...]:
    """The n-grams of one word padded with a space each side, shortest n first."""
    padded = f" {word} "
    size = len(padded)
    return tuple(
        padded[i : i + n] for n in range(MIN_N, min(MAX_N, size) + 1) for i in range(size - n + 1)
    )


MAX_CHARS = 2_000
"""The model reads this much of a message (the longest labelled one has 794 characters): a
long email's quoted history and signature add cost, not meaning, and the work per message
stays bounded. The rules still read all of it."""


def message_text(text: str, subject: str | None) -> str:
    """The text the model reads: an email's subject line, then its body, cut at MAX_CHARS."""
    return (f"{subject}\n{text}" if subject else text)[:MAX_CHARS]


def blocks(text: str, channel: Channel, role: PatronRole) -> tuple[list[str], list[str]]:
    """The two feature blocks of a message (repeats kept: they are counted): every character
    n-gram of the folded text and the markers; every word and pair of adjacent words."""
    chars: list[str] = []
    extend = chars.extend
    folded = fold(text)
    for word in folded.split(" "):
        extend(_cached_word_grams(word) if len(word) <= CACHED_WORD else word_grams(word))
    chars.append(CHANNEL_MARK[channel])
    if role is PatronRole.FACULTY:
        chars.append(ROLE_FACULTY)
    words = [WORD + w for w in WORDS.findall(folded)]
    words += [f"{a} {b[1:]}" for a, b in pairwise(words)]
    return chars, words


def grams(text: str, channel: Channel, role: PatronRole) -> list[str]:
    """Both blocks as one list (word features start with WORD)."""
    chars, words = blocks(text, channel, role)
    return chars + words
