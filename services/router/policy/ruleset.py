"""A compiled set of rules (crisis or general) and its evaluation against one message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter

from shared.events import Channel, PatronRole

from .matcher import CUE_SLOT, NONE_SLOT, Hit, TermIndex, TermRef
from .model import Rule, TermGroup
from .normalise import Normalised, Normaliser


@dataclass(frozen=True, slots=True)
class Context:
    """What a rule's filters look at, plus the message-wide negation and correction marks."""

    channel: Channel
    role: PatronRole
    desk_open: bool
    negation_ends: frozenset[int]
    window: int
    cut: int


class RuleSet:
    """Rules evaluated in file order over one shared term index."""

    def __init__(self, rules: Iterable[Rule], norm: Normaliser) -> None:
        """Index every term of every rule once."""
        self.rules = list(rules)
        self.index = TermIndex()
        for r, rule in enumerate(self.rules):
            c = rule.conditions
            self._add(c.any_of, TermRef(r, 0), norm)
            self._add(c.none_of, TermRef(r, NONE_SLOT), norm)
            for k, group in enumerate(c.all_of, start=1):
                self._add(group, TermRef(r, k), norm)
            for k, cue in enumerate(c.cues):
                self._add(cue, TermRef(r, CUE_SLOT + k), norm)
        self.index.freeze()
        # per rule: (filters..., needs text) precomputed so evaluation does no method calls
        self._plan = [
            (
                r,
                rule,
                rule.conditions.channel,
                rule.conditions.patron_role,
                rule.conditions.desk_hours,
                rule.conditions.has_text(),
            )
            for r, rule in enumerate(self.rules)
        ]

    def _add(self, group: TermGroup | None, ref: TermRef, norm: Normaliser) -> None:
        """Add one term group's phrases, stems and patterns."""
        if group is None:
            return
        for phrase in group.phrases:
            self.index.add_phrase(norm.tokens(phrase), ref)
        for stem in group.stems:
            self.index.add_stem(norm.tokens(stem), ref)
        for pattern in group.patterns:
            self.index.add_pattern(pattern, ref)

    def fired(self, text: Normalised, ctx: Context) -> list[tuple[Rule, list[str]]]:
        """Every rule whose conditions hold, in order, with the words that made it fire."""
        by_rule: dict[int, list[Hit]] = {}
        for hit in self.index.scan(text):
            got = by_rule.get(hit[0])
            if got is None:
                by_rule[hit[0]] = [hit]
            else:
                got.append(hit)
        out: list[tuple[Rule, list[str]]] = []
        for r, rule, channels, roles, hours, needs_text in self._plan:
            if needs_text and r not in by_rule:
                continue
            if channels is not None and ctx.channel not in channels:
                continue
            if roles is not None and ctx.role not in roles:
                continue
            if hours is not None and (hours == "open") != ctx.desk_open:
                continue
            if not needs_text:
                out.append((rule, []))
                continue
            words = _words(rule, by_rule[r], text, ctx)
            if words is not None:
                out.append((rule, words))
        return out


def _words(rule: Rule, hits: list[Hit], text: Normalised, ctx: Context) -> list[str] | None:
    """The matched words when a rule's text conditions hold, else None."""
    if not hits:
        return None
    c = rule.conditions
    masks = [(h[2], h[3]) for h in hits if h[1] == NONE_SLOT]
    cut = 0 if rule.crisis else ctx.cut
    slots: dict[int, list[str]] = {}
    cue_words: list[str] = []
    best: dict[str, int] = {}
    negation_ends = ctx.negation_ends if c.negatable else ()
    window = ctx.window
    toks = text.tokens
    # in the order of the text (start, end), not the index's: it finds terms in a set's
    # order, which changes with each process's hash seed
    for _, slot, start, end in sorted(hits, key=itemgetter(2, 3)):
        if slot == NONE_SLOT or start < cut:
            continue
        if masks and any(start < me and ms < end for ms, me in masks):
            continue
        if negation_ends and any(start - window <= e <= start for e in negation_ends):
            continue
        words = " ".join(toks[start:end])
        if slot >= CUE_SLOT:
            cue = c.cues[slot - CUE_SLOT]
            best[cue.category] = max(best.get(cue.category, 0), cue.weight)
            cue_words.append(words)
            continue
        slots.setdefault(slot, []).append(words)
    has_any = c.any_of is not None and not c.any_of.is_empty()
    cued = bool(c.cues) and sum(best.values()) >= c.threshold
    if cued:
        slots.setdefault(0, []).extend(cue_words)
    elif (has_any or c.cues) and 0 not in slots:
        return None
    if any(k not in slots for k in range(1, len(c.all_of) + 1)):
        return None
    return list(dict.fromkeys(w for k in sorted(slots) for w in slots[k]))
