"""The term index: literal-start indexing of patterns, and patterns sharing a start word."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.router.policy import DecisionInput, Policy
from services.router.policy.matcher import TermIndex, TermRef, start_keys
from services.router.policy.normalise import Normaliser
from shared.events import Channel


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


def test_a_rule_lists_its_words_in_the_order_of_the_text(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index finds terms in a set's order, which changes with the process's hash seed:
    the words a decision lists follow the message, so every process explains it alike."""
    inp = DecisionInput(
        channel=Channel.SMS,
        text="i am done. goodbye everyone, i will not be around tomorrow",
        received_at=datetime(2025, 10, 1, 15, 0, tzinfo=UTC),
    )
    first = policy.decide(inp)
    index = policy._crisis.index
    scan = index.scan
    monkeypatch.setattr(index, "scan", lambda text: scan(text)[::-1])
    again = policy.decide(inp)
    assert first.rules == again.rules
    words = [w for hit in first.rules if hit.rule_id == "crisis-signals" for w in hit.matched]
    assert words == sorted(words, key=inp.text.index) and len(words) >= 2
