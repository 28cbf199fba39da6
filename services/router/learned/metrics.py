"""The figures the issue's bars are stated in, per language, for a list of decided examples."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .data import Example
from .model import CRISIS


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one labelled example was decided."""

    example: Example
    route: str
    escalated: bool
    review: bool
    lang: str
    """the detected language"""
    risk: float


@dataclass(slots=True)
class Counts:
    """Counts of one group of outcomes."""

    n: int = 0
    correct: int = 0
    crisis: int = 0
    caught: int = 0
    """crisis messages escalated or flagged for review"""
    escalated: int = 0
    """crisis messages escalated"""
    non_crisis: int = 0
    false_escalations: int = 0
    review_flags: int = 0
    """non-crisis messages flagged for review"""
    lang_right: int = 0

    def add(self, o: Outcome) -> None:
        """Count one outcome."""
        self.n += 1
        self.correct += o.route == o.example.label
        self.lang_right += o.lang == o.example.lang
        if o.example.label == CRISIS:
            self.crisis += 1
            self.caught += o.escalated or o.review
            self.escalated += o.escalated
        else:
            self.non_crisis += 1
            self.false_escalations += o.escalated
            self.review_flags += o.review and not o.escalated

    def as_dict(self) -> dict[str, int]:
        """The counts as JSON."""
        return {k: getattr(self, k) for k in self.__slots__}

    @staticmethod
    def header() -> str:
        """The markdown table header for row()."""
        return (
            "| measured on | messages | accuracy | crisis caught | escalated |"
            " false escalations | review flags |\n|---|---:|---:|---:|---:|---:|---:|"
        )

    @staticmethod
    def row(name: str, c: dict[str, Any]) -> str:
        """One markdown row: shares with their counts."""

        def share(k: int, n: int) -> str:
            return f"{k / n:.1%} ({k}/{n})" if n else "-"

        return (
            f"| {name} | {c['n']} | {share(c['correct'], c['n'])} |"
            f" {share(c['caught'], c['crisis'])} | {share(c['escalated'], c['crisis'])} |"
            f" {share(c['false_escalations'], c['non_crisis'])} |"
            f" {share(c['review_flags'], c['non_crisis'])} |"
        )


def tally(outcomes: Iterable[Outcome]) -> dict[str, Counts]:
    """Counts per language of the example ("en", "es") and for all."""
    out = {"en": Counts(), "es": Counts(), "all": Counts()}
    for o in outcomes:
        out[o.example.lang].add(o)
        out["all"].add(o)
    return out


def as_json(counts: dict[str, Counts]) -> dict[str, dict[str, int]]:
    """tally() as JSON."""
    return {k: c.as_dict() for k, c in counts.items()}
