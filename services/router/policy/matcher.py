"""Compiled term index: every phrase, stem and pattern of a set of rules, scanned in one pass.

Phrases and stems are indexed by their first word, so a message costs one dict lookup per
word. All patterns are merged into one alternation of lookaheads, one named group per
distinct pattern, tried at word starts only (patterns must start at a word), scanned
once with finditer: being zero-width, a match at one offset
does not hide matches starting inside it; of different patterns starting at the same
offset only the first (in file order) is seen. A pattern shared by several rules (a YAML
alias) is compiled once and feeds all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .text import Normalised

NONE_SLOT = -1
"""Slot of a none_of (masking) term; 0 is any_of, k >= 1 is all_of[k - 1]."""


@dataclass(frozen=True, slots=True)
class TermRef:
    """Which rule (index into the matcher's rule list) and which condition slot a term feeds."""

    rule: int
    slot: int


@dataclass(frozen=True, slots=True)
class Hit:
    """One term found in a message, as a token span."""

    ref: TermRef
    start: int
    end: int


class TermIndex:
    """Builder and scanner of one rule set's terms."""

    def __init__(self) -> None:
        """Start empty; add terms, then call freeze()."""
        self._refs: list[TermRef] = []
        self._phrases: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        self._stems: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        self._patterns: dict[str, list[TermRef]] = {}
        self._regex: re.Pattern[str] | None = None
        self._group_refs: list[list[TermRef]] = []

    def _ref(self, ref: TermRef) -> int:
        """Register a term reference and return its id."""
        self._refs.append(ref)
        return len(self._refs) - 1

    def add_phrase(self, words: tuple[str, ...], ref: TermRef) -> None:
        """Index a phrase (exact words in order)."""
        self._phrases.setdefault(words[0], []).append((words, self._ref(ref)))

    def add_stem(self, prefixes: tuple[str, ...], ref: TermRef) -> None:
        """Index a stem (each word of the message starts with the matching prefix)."""
        self._stems.setdefault(prefixes[0][:3], []).append((prefixes, self._ref(ref)))

    def add_pattern(self, pattern: str, ref: TermRef) -> None:
        """Add a regex (already checked to compile) to the merged alternation."""
        self._patterns.setdefault(pattern, []).append(ref)

    def freeze(self) -> None:
        """Compile the merged alternation once."""
        self._group_refs = list(self._patterns.values())
        if self._patterns:
            alts = (f"(?P<p{i}>{p})" for i, p in enumerate(self._patterns))
            # only word starts are tried: the cheap guard fails fast everywhere else
            self._regex = re.compile("(?<![a-z0-9])(?=[a-z0-9])(?=" + "|".join(alts) + ")")

    def scan(self, text: Normalised) -> list[Hit]:
        """Every term occurrence in a normalised message."""
        hits: list[Hit] = []
        toks = text.tokens
        n = len(toks)
        refs = self._refs
        # only words that begin some term are looked at (set intersection, in C)
        for word in self._phrases.keys() & text.positions.keys():
            for i in text.positions[word]:
                for words, tid in self._phrases[word]:
                    end = i + len(words)
                    if end <= n and toks[i:end] == words:
                        hits.append(Hit(refs[tid], i, end))
        for key in self._stems.keys() & text.prefixes.keys():
            for i in text.prefixes[key]:
                for prefixes, tid in self._stems[key]:
                    end = i + len(prefixes)
                    if end <= n and _prefixed(toks, i, prefixes):
                        hits.append(Hit(refs[tid], i, end))
        if self._regex is not None:
            for m in self._regex.finditer(text.joined):
                name = m.lastgroup
                if name is None:
                    continue
                lo, hi = m.span(name)
                if hi == lo:
                    continue
                start, end = text.token_at(lo), text.token_at(hi - 1) + 1
                hits.extend(Hit(ref, start, end) for ref in self._group_refs[int(name[1:])])
        return hits


def _prefixed(toks: Sequence[str], i: int, prefixes: tuple[str, ...]) -> bool:
    """True when toks[i:] start with words beginning with each prefix in turn."""
    return all(toks[i + k].startswith(p) for k, p in enumerate(prefixes))
