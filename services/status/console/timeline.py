"""The routing line of a conversation's timeline in words: the rules that routed it named as a
librarian reads them ("the crisis rule (suicide)", "the learned safety net"), their policy ids
kept beside them for supervisors who look a rule up in the router's policy.

The routing event (`RoutingDecided.rules`) carries each rule's id and the words it matched
(patron text, never shown here), no title or description; the router's policy is the router's
own, so the names are made here from the ids, which the policy writes as plain words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

LEARNED_NET = "the learned safety net"
RULE_NAMES = {
    "learned-crisis": LEARNED_NET,
    "learned-route": "the learned safety net's suggested route",
    "reference-default": "the desk's catch-all rule",
}
"""Rules whose id says too little (the router's pseudo-rules and its catch-all)."""
CRISIS_TOPICS = {
    "self-harm": "self-harm",
    "signals": "warning signs",
    "unsafe": "feeling unsafe",
}
"""What a crisis rule is about, where its id's words alone read badly."""

ROUTED_BY = re.compile(
    r"^(?P<head>Routed to .+?) by rule (?P<ids>[a-z0-9][a-z0-9-]*(?:, [a-z0-9][a-z0-9-]*)*)"
    r"(?P<tail>.*)$"
)
"""A routing line as the projection writes it (`transcript._department_phrase`), after the
reading names its department (`reading.event_text`)."""
NET_NOTE = " — learned safety net"
REVIEW_NOTE = " — flagged for safety review"


@dataclass(frozen=True)
class Rule:
    """One rule of a routing line: its policy id and its name in words."""

    id: str
    name: str


@dataclass(frozen=True)
class RoutedLine:
    """A routing line cut where the rules go: "<head> by <rules><tail>"."""

    head: str
    rules: tuple[Rule, ...]
    tail: str

    @property
    def ids(self) -> str:
        """The rules' policy ids, as the policy file writes them."""
        return ", ".join(rule.id for rule in self.rules)

    @property
    def text(self) -> str:
        """The whole line in words (for a screen reader, a test, a tooltip)."""
        return f"{self.head} by {joined([rule.name for rule in self.rules])}{self.tail}"


def rule_name(rule_id: str, department_name: Callable[[str], str]) -> str:
    """A rule as a librarian reads it: "the crisis rule (suicide named as a topic)", "the
    Writing Center rule" (a rule named after its department), "the circulation loans rule"."""
    if rule_id in RULE_NAMES:
        return RULE_NAMES[rule_id]
    if rule_id.startswith("crisis-"):
        about = rule_id.removeprefix("crisis-")
        topic = about.endswith("-topic")
        about = about.removesuffix("-topic")
        words = CRISIS_TOPICS.get(about, about.replace("-", " "))
        return f"the crisis rule ({words}{' named as a topic' if topic else ''})"
    department = department_name(rule_id)
    if department != rule_id:
        return f"the {department} rule"
    return f"the {rule_id.replace('-', ' ')} rule"


def joined(names: list[str]) -> str:
    """Names as a sentence lists them: "a", "a and b", "a, b and c"."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def routed_line(text: str, department_name: Callable[[str], str]) -> RoutedLine | None:
    """A routing line with its rules named in words, or None for any other line."""
    found = ROUTED_BY.match(text)
    if found is None:
        return None
    rules = tuple(Rule(i, rule_name(i, department_name)) for i in found["ids"].split(", "))
    tail = found["tail"]
    if NET_NOTE in tail:
        if any(rule.name.startswith(LEARNED_NET) for rule in rules):
            tail = tail.replace(NET_NOTE, "", 1)  # the rules already name the net
        elif REVIEW_NOTE in tail:
            tail = tail.replace(NET_NOTE, "", 1).replace(
                REVIEW_NOTE, f"{REVIEW_NOTE} by {LEARNED_NET}", 1
            )
        else:
            tail = tail.replace(NET_NOTE, f" — {LEARNED_NET}", 1)
    return RoutedLine(head=found["head"], rules=rules, tail=tail)
