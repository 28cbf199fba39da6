"""Text normalisation shared by the compiler (for policy terms) and the matcher (for messages)."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

_APOSTROPHES = str.maketrans("", "", "'\u2018\u2019\u02bc`")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Normalised:
    """A message as the matcher sees it: tokens, joined form, offsets and word positions."""

    tokens: tuple[str, ...]
    joined: str
    starts: tuple[int, ...]
    positions: dict[str, list[int]]
    """token -> indexes where it occurs (phrase lookups)"""
    prefixes: dict[str, list[int]]
    """first three letters -> indexes of tokens starting with them (stem lookups)"""

    def token_at(self, offset: int) -> int:
        """Index of the token that contains a character offset of `joined`."""
        return max(bisect_right(self.starts, offset) - 1, 0)


class Normaliser:
    """Lower-cases, drops apostrophes, splits into words and expands SMS shorthand."""

    def __init__(self, shorthand: Mapping[str, str]) -> None:
        """Pre-split every expansion so normalising a message is one dict lookup per word."""
        self._expand = {k.lower(): tuple(_WORD.findall(v.lower())) for k, v in shorthand.items()}

    def tokens(self, text: str) -> tuple[str, ...]:
        """The normalised words of a text."""
        words = _WORD.findall(text.lower().translate(_APOSTROPHES))
        expand = self._expand
        if expand.keys().isdisjoint(words):  # the common case: nothing to expand
            return tuple(words)
        out: list[str] = []
        for word in words:
            rep = expand.get(word)
            if rep is None:
                out.append(word)
            else:
                out.extend(rep)
        return tuple(out)

    def normalise(self, text: str) -> Normalised:
        """Tokens plus the single-spaced string that policy patterns run on."""
        toks = self.tokens(text)
        starts: list[int] = []
        positions: dict[str, list[int]] = {}
        prefixes: dict[str, list[int]] = {}
        pos = 0
        for i, tok in enumerate(toks):
            starts.append(pos)
            pos += len(tok) + 1
            at = positions.get(tok)
            if at is None:
                positions[tok] = [i]
            else:
                at.append(i)
            at = prefixes.get(tok[:3])
            if at is None:
                prefixes[tok[:3]] = [i]
            else:
                at.append(i)
        return Normalised(toks, " ".join(toks), tuple(starts), positions, prefixes)
