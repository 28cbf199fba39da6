"""The term index: literal-start indexing of patterns, and patterns sharing a start word."""

from __future__ import annotations

from services.router.policy.matcher import TermIndex, TermRef, start_keys
from services.router.policy.normalise import Normaliser


def test_start_keys_read_from_the_regex() -> None:
    """Optional words, alternations and short words give the word keys a match starts with."""
    keys = start_keys(r"\b(?:the |a )?(?:rope|noose) (?:is )?ready\b")
    assert keys == {("prefix", "the"), ("word", "a"), ("prefix", "rop"), ("prefix", "noo")}
    assert start_keys(r"\bkill(?:ed)? my ?self\b") == {("prefix", "kil")}
    assert start_keys(r"\bi (?:could|will) hurt\b") == {("word", "i")}
    assert start_keys(r"\b\w+ on fire\b") is None  # unreadable start: tried at every word


def test_patterns_at_the_same_word_do_not_hide_each_other() -> None:
    """Two patterns starting at one word both hit, as does an unindexed one."""
    index = TermIndex()
    index.add_pattern(r"\bmy ex (?:is )?outside\b", TermRef(0, 0))
    index.add_pattern(r"\bmy ex\b", TermRef(1, 0))
    index.add_pattern(r"\b\w+ outside\b", TermRef(2, 0))
    index.freeze()
    text = Normaliser({}).normalise("my ex is outside")
    assert {(h[0], h[2], h[3]) for h in index.scan(text)} == {(0, 0, 4), (1, 0, 2), (2, 2, 4)}
