"""Accent folding for the transcript search on PostgreSQL: text decomposed (NFD), its
combining marks (U+0300-U+036F) dropped, and the few letters with a stroke that have no
decomposition (Vietnamese and Serbo-Croatian Đ, Nordic Ø, Polish Ł, Maltese Ħ, Sámi Ŧ,
Turkish dotless i) given their base letter. SQLite's FTS5 tokenizer folds diacritics itself;
with this, "Jose" finds "José", "cafe" finds "café" and "duc" finds "Đức" on PostgreSQL too.

The transcript's text index (`ix_transcript_fts`, built by `search_index.py`) is on this very
expression, and PostgreSQL uses an expression index only for the expression it was built on:
the status service builds it again at its start when these constants are not in it.
`normalize()` and `regexp_replace()` build the index about as fast as the plain text (0.9 s
against 0.7 s for 100,000 lines); a `translate()` of every accented letter took 10.5 s."""

from __future__ import annotations

import unicodedata

MARKS = "[\\u0300-\\u036f]"
"""The combining diacritical marks, as a PostgreSQL regular expression."""
STROKED = "ĐđØøŁłĦħŦŧı"
"""Letters with a stroke or without a dot, which no decomposition separates from their base."""
UNSTROKED = "DdOoLlHhTti"
"""Each letter of STROKED as it is searched, in the same place."""
_UNSTROKE = str.maketrans(STROKED, UNSTROKED)


def fold(word: str) -> str:
    """A searched word as the index holds it: without diacritics ("José" -> "Jose", "Đức" ->
    "Duc")."""
    decomposed = unicodedata.normalize("NFD", word)
    # the marks the index drops (MARKS), and no others: a Hindi vowel sign stays, as it does
    # in the index
    unmarked = "".join(c for c in decomposed if not 0x300 <= ord(c) <= 0x36F)
    return unicodedata.normalize("NFC", unmarked).translate(_UNSTROKE)
