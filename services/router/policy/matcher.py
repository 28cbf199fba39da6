"""Compiled term index: every phrase, stem and pattern of a set of rules, scanned in one pass.

Phrases and stems are indexed by their first word, so a message costs one dict lookup per
word. Patterns (which must start at a word) are indexed the same way: the compiler reads
each regex's parse tree for the literal text every match must begin with ("the rope",
"rope", "i could" ...) and files the pattern under that first word's three-letter prefix
(or the whole word, when shorter). A message then runs only the patterns whose first word
it contains, anchored with `match` at exactly those words, so a message pays for the few
patterns that can match it, not for all of them. Every candidate pattern is tried at every
candidate word: patterns starting at the same word do not hide one another. A pattern whose
start cannot be read (it begins with a class such as `\\w`) is tried at every word. A
pattern shared by several rules (a YAML alias) is compiled once and feeds all of them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# the regex parser of the standard library (re._parser from 3.11, sre_parse before)
try:
    _sre_c: Any = importlib.import_module("re._constants")
    _sre_p: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - older interpreters
    _sre_c = importlib.import_module("sre_constants")
    _sre_p = importlib.import_module("sre_parse")

from .normalise import Normalised

NONE_SLOT = -1
"""Slot of a none_of (masking) term; 0 is any_of, k >= 1 is all_of[k - 1]."""
CUE_SLOT = 1000
"""Slots from here on are weighted cue groups: CUE_SLOT + k is cues[k]."""

_KEY_LEN = 3
"""Length of the word prefix that phrases, stems and patterns are filed under."""
_MAX_PREFIXES = 256
"""Cap on the literal starts expanded per pattern (past it, starts are cut short)."""


@dataclass(frozen=True, slots=True)
class TermRef:
    """Which rule (index into the matcher's rule list) and which condition slot a term feeds."""

    rule: int
    slot: int


_Refs = tuple[tuple[int, int], ...]
"""(rule, slot) pairs that one term feeds."""
_Entry = tuple[tuple[str, ...], int, _Refs]
"""A phrase or stem: its words, their count, and the (rule, slot) pairs it feeds."""

Hit = tuple[int, int, int, int]
"""One term found in a message: (rule, slot, start token, end token), a plain tuple (cheap)."""


class TermIndex:
    """Builder and scanner of one rule set's terms."""

    def __init__(self) -> None:
        """Start empty; add terms, then call freeze()."""
        self._refs: list[TermRef] = []
        self._phrases: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        self._stems: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        self._patterns: dict[str, list[TermRef]] = {}
        # pattern id -> (compiled, refs); and the word keys that select candidate patterns
        self._compiled: list[tuple[Callable[[str, int], re.Match[str] | None], _Refs]] = []
        self._phrase_table: dict[str, tuple[_Refs, tuple[_Entry, ...]]] = {}
        self._stem_table: dict[str, tuple[_Entry, ...]] = {}
        self._pat_by_prefix: dict[str, list[int]] = {}
        self._pat_by_word: dict[str, list[int]] = {}
        self._pat_anywhere: list[int] = []

    def _ref(self, ref: TermRef) -> int:
        """Register a term reference and return its id."""
        self._refs.append(ref)
        return len(self._refs) - 1

    def add_phrase(self, words: tuple[str, ...], ref: TermRef) -> None:
        """Index a phrase (exact words in order)."""
        self._phrases.setdefault(words[0], []).append((words, self._ref(ref)))

    def add_stem(self, prefixes: tuple[str, ...], ref: TermRef) -> None:
        """Index a stem (each word of the message starts with the matching prefix)."""
        self._stems.setdefault(prefixes[0][:_KEY_LEN], []).append((prefixes, self._ref(ref)))

    def add_pattern(self, pattern: str, ref: TermRef) -> None:
        """Add a regex (already checked to compile); indexed by its literal start at freeze()."""
        self._patterns.setdefault(pattern, []).append(ref)

    def freeze(self) -> None:
        """Compile every pattern once and file it under the first words it can start with.

        Lookup tables hold plain tuples so that scanning allocates nothing but the hits:
        one-word phrases (most of them) hit on the dict lookup alone.
        """
        refs = self._refs
        for word, entries in self._phrases.items():
            single = tuple((refs[t].rule, refs[t].slot) for w, t in entries if len(w) == 1)
            multi: dict[tuple[str, ...], list[tuple[int, int]]] = {}
            for w, t in entries:  # a phrase shared by several rules is compared once
                if len(w) > 1:
                    multi.setdefault(w, []).append((refs[t].rule, refs[t].slot))
            self._phrase_table[word] = (
                tuple(dict.fromkeys(single)),
                tuple((w, len(w), tuple(dict.fromkeys(r))) for w, r in multi.items()),
            )
        for key, entries in self._stems.items():
            stems: dict[tuple[str, ...], list[tuple[int, int]]] = {}
            for p, t in entries:
                stems.setdefault(p, []).append((refs[t].rule, refs[t].slot))
            self._stem_table[key] = tuple(
                (p, len(p), tuple(dict.fromkeys(r))) for p, r in stems.items()
            )
        for pid, (pattern, refs) in enumerate(self._patterns.items()):
            self._compiled.append(
                (re.compile(pattern).match, tuple((r.rule, r.slot) for r in refs))
            )
            keys = start_keys(pattern)
            if keys is None:
                self._pat_anywhere.append(pid)
                continue
            for kind, key in keys:
                table = self._pat_by_prefix if kind == "prefix" else self._pat_by_word
                table.setdefault(key, []).append(pid)

    def scan(self, text: Normalised) -> list[Hit]:
        """Every term occurrence in a normalised message, as (rule, slot, start, end) tuples."""
        hits: list[Hit] = []
        add = hits.append
        toks = text.tokens
        n = len(toks)
        positions = text.positions
        prefixes = text.prefixes
        phrase_table = self._phrase_table
        # only words that begin some term are looked at (set intersection, in C)
        for word in phrase_table.keys() & positions.keys():
            single, multi = phrase_table[word]
            for i in positions[word]:
                for rule, slot in single:
                    add((rule, slot, i, i + 1))
                for words, size, prefs in multi:
                    end = i + size
                    if end <= n and toks[i:end] == words:
                        for rule, slot in prefs:
                            add((rule, slot, i, end))
        stem_table = self._stem_table
        for key in stem_table.keys() & prefixes.keys():
            for i in prefixes[key]:
                for stem, size, prefs in stem_table[key]:
                    end = i + size
                    if end <= n and _prefixed(toks, i, stem):
                        for rule, slot in prefs:
                            add((rule, slot, i, end))
        if self._compiled:
            joined = text.joined
            starts = text.starts
            compiled = self._compiled
            token_at = text.token_at
            for table, where in ((self._pat_by_prefix, prefixes), (self._pat_by_word, positions)):
                for key in table.keys() & where.keys():
                    at = where[key]
                    for pid in table[key]:
                        match, prefs = compiled[pid]
                        for i in at:
                            m = match(joined, starts[i])
                            if m is not None and m.end() > m.start():
                                end = token_at(m.end() - 1) + 1
                                for rule, slot in prefs:
                                    add((rule, slot, i, end))
            for pid in self._pat_anywhere:
                match, prefs = compiled[pid]
                for i in range(n):
                    m = match(joined, starts[i])
                    if m is not None and m.end() > m.start():
                        end = token_at(m.end() - 1) + 1
                        for rule, slot in prefs:
                            add((rule, slot, i, end))
        return hits


def _prefixed(toks: Sequence[str], i: int, prefixes: tuple[str, ...]) -> bool:
    """True when toks[i:] start with words beginning with each prefix in turn."""
    return all(toks[i + k].startswith(p) for k, p in enumerate(prefixes))


# ---- reading a pattern's literal start from its parse tree ----

_ZERO_WIDTH = {_sre_c.AT, _sre_c.ASSERT, _sre_c.ASSERT_NOT}
_GROUPS = {_sre_c.SUBPATTERN, getattr(_sre_c, "ATOMIC_GROUP", _sre_c.SUBPATTERN)}
_REPEATS = {_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT}
if hasattr(_sre_c, "POSSESSIVE_REPEAT"):
    _REPEATS.add(_sre_c.POSSESSIVE_REPEAT)

# a partial start: (text so far, still growing?)
_Partial = tuple[str, bool]


def _expand(items: Sequence[tuple[Any, Any]], parts: set[_Partial]) -> set[_Partial]:
    """Extend every growing partial by a sequence of parse items; stop at anything non-literal.

    Cutting a start short is always safe (a shorter literal start is still necessary), so
    whatever cannot be followed exactly (classes, open repeats, too many branches) stops it.
    """
    for op, av in items:
        # a start that already names its word key (3 letters, or a whole word) is enough
        parts = {(s, g and len(s) < _KEY_LEN and " " not in s) for s, g in parts}
        growing = {p for p in parts if p[1]}
        if not growing:
            return parts
        done = parts - growing
        if len(growing) > _MAX_PREFIXES:
            return done | {(s, False) for s, _ in growing}
        if op is _sre_c.LITERAL:
            new = {(s + chr(av), True) for s, _ in growing}
        elif op in _ZERO_WIDTH:
            new = growing
        elif op in _GROUPS:
            new = _expand(av[-1], growing)
        elif op is _sre_c.BRANCH:
            new = set()
            for alt in av[1]:
                new |= _expand(alt, growing)
        elif op in _REPEATS:
            lo, hi, sub = av
            once = _expand(sub, growing)
            if hi != 1:
                once = {(s, False) for s, _ in once}
            new = once | growing if lo == 0 else once
        else:
            new = {(s, False) for s, _ in growing}
        parts = done | new
    return parts


def start_keys(pattern: str) -> set[tuple[str, str]] | None:
    """The word keys a match must start with, or None when the start cannot be read.

    ("prefix", "rop") means a word starting "rop" (three letters, as Normalised.prefixes);
    ("word", "i") a whole short word (as Normalised.positions).
    """
    try:
        tree = _sre_p.parse(pattern)
    except re.error:
        return None
    keys: set[tuple[str, str]] = set()
    for start, _ in _expand(list(tree), {("", True)}):
        word, space, _rest = start.partition(" ")
        if len(word) >= _KEY_LEN:
            keys.add(("prefix", word[:_KEY_LEN]))
        elif space and word:
            keys.add(("word", word))
        else:  # too short to say which word it starts at
            return None
    return keys
