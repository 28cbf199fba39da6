"""Static reachability: find rules that can never fire because an earlier rule always wins."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .model import Conditions, Rule, TermGroup

Canon = frozenset[tuple[str, tuple[str, ...]]]


def _canon(group: TermGroup | None, words: Callable[[str], tuple[str, ...]]) -> Canon:
    """A group's terms in normalised form, so spelling variants compare equal."""
    if group is None:
        return frozenset()
    terms = {("phrase", words(p)) for p in group.phrases}
    terms |= {("stem", words(s)) for s in group.stems}
    terms |= {("pattern", (p,)) for p in group.patterns}
    return frozenset(terms)


def _covers(wide: Sequence[str] | None, narrow: Sequence[str] | None) -> bool:
    """True when a filter list allows everything the other allows (None = no filter)."""
    return wide is None or (narrow is not None and set(narrow) <= set(wide))


def _filters_cover(a: Conditions, b: Conditions) -> bool:
    """True when rule a's channel/role/hours filters let through everything b's do."""
    hours = a.desk_hours is None or a.desk_hours == b.desk_hours
    return _covers(a.channel, b.channel) and _covers(a.patron_role, b.patron_role) and hours


def shadowed_by(earlier: Rule, later: Rule, words: Callable[[str], tuple[str, ...]]) -> bool:
    """True when `earlier` fires on every message `later` fires on."""
    a, b = earlier.conditions, later.conditions
    if not _filters_cover(a, b):
        return False
    if not a.has_text():
        return True
    a_any, b_any = _canon(a.any_of, words), _canon(b.any_of, words)
    a_all = sorted(sorted(_canon(g, words)) for g in a.all_of)
    b_all = sorted(sorted(_canon(g, words)) for g in b.all_of)
    same = (
        a_any == b_any
        and a_all == b_all
        and _canon(a.none_of, words) == _canon(b.none_of, words)
        and a.negatable == b.negatable
        and a.cues == b.cues
        and a.threshold == b.threshold
    )
    if same:
        return True
    # a broader earlier rule: no extra requirements, no masks, and all of later's any-terms
    plain = not a.all_of and a.none_of is None and not a.negatable
    return plain and bool(b_any) and not b.cues and b_any <= a_any


def unreachable(
    rules: list[Rule], words: Callable[[str], tuple[str, ...]]
) -> list[tuple[int, int]]:
    """(later, earlier) index pairs; crisis and other rules are compared within their own set."""
    found: list[tuple[int, int]] = []
    for j, later in enumerate(rules):
        for i in range(j):
            earlier = rules[i]
            if earlier.crisis == later.crisis and shadowed_by(earlier, later, words):
                found.append((j, i))
                break
    return found
