"""The compiled policy: desk hours, rules and texts, and `decide` for one message.

Evaluation order: crisis rules first, on every message (whole text, no corrections or
negation cues); then the other rules in file order, first match wins. The winner's
department decides the hand-off; a live transfer with nobody Online becomes a ticket.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from shared.events import Action, Priority, RuleHit

from . import texts
from .checks import text_values
from .decision import Decision, DecisionInput
from .extract import Extractor
from .guidance import guidance_for
from .hours import DeskHours
from .matcher import TermIndex, TermRef
from .model import Department, DepartmentKind, PolicyDoc, Settings
from .ruleset import Context, RuleSet
from .text import Normaliser

_NEGATION, _CORRECTION = 0, 1


class Policy:
    """One version of the routing policy, compiled once and safe to share between tasks."""

    def __init__(
        self, doc: PolicyDoc, *, version: str, lines: dict[tuple[str | int, ...], int]
    ) -> None:
        """Compile a validated document (use load_policy rather than calling this)."""
        self.doc = doc
        self.version = version
        self.label = doc.label
        self.lines = lines
        self.links: dict[str, str] = dict(doc.links)
        self.settings: Settings = doc.settings
        self.hours = DeskHours(ZoneInfo(doc.timezone), doc.hours.week())
        self._norm = Normaliser(doc.normalise.shorthand)
        self._crisis = RuleSet((r for r in doc.rules if r.crisis), self._norm)
        self._general = RuleSet((r for r in doc.rules if not r.crisis), self._norm)
        self._cues = TermIndex()
        for cue in doc.normalise.negation_cues:
            self._cues.add_phrase(self._norm.tokens(cue), TermRef(_NEGATION, 0))
        for cue in doc.normalise.corrections:
            self._cues.add_phrase(self._norm.tokens(cue), TermRef(_CORRECTION, 0))
        self._cues.freeze()
        self._extractor = Extractor(doc.extract)
        values = text_values(doc)
        self._departments = {d.id: d for d in doc.departments}
        self._handoff = {
            d.id: {
                ch: texts.prerender(t, {**values, "name": d.name, "contact": d.contact})
                for ch, t in d.handoff.items()
            }
            for d in doc.departments
        }
        self._fallback = {
            d.id: {
                ch: texts.prerender(t, {**values, "name": d.name, "contact": d.contact})
                for ch, t in d.fallback.message.items()
            }
            for d in doc.departments
            if d.fallback is not None
        }
        self._ack = {ch: texts.prerender(t, values) for ch, t in doc.after_hours_ack.items()}
        self._keywords = {
            k.lower(): texts.prerender(t, values) for k, t in doc.sms_keywords.items()
        }

    def department(self, dept_id: str) -> Department:
        """A department by id; KeyError when the policy has none."""
        return self._departments[dept_id]

    def is_open(self, dt: datetime) -> bool:
        """True when the desk is open at an aware datetime."""
        return self.hours.is_open(dt)

    def next_open(self, dt: datetime) -> datetime:
        """`dt` when the desk is open, else when it next opens (in the policy timezone)."""
        return self.hours.next_open(dt)

    def decide(self, inp: DecisionInput, *, online: frozenset[str] | None = None) -> Decision:
        """Route one message; `online` lists departments with someone Online (None: all)."""
        full = f"{inp.subject}\n{inp.text}" if inp.subject else inp.text
        text = self._norm.normalise(full)
        desk_open = self.hours.is_open(inp.received_at)
        neg_ends: set[int] = set()
        cut = 0
        for kind, _, _, end in self._cues.scan(text):
            if kind == _NEGATION:
                neg_ends.add(end)
            else:
                cut = max(cut, end)
        ctx = Context(
            inp.channel,
            inp.patron_role,
            desk_open,
            frozenset(neg_ends),
            self.doc.normalise.negation_window,
            cut,
        )
        fired = self._crisis.fired(text, ctx) or []
        fired += self._general.fired(text, ctx)
        rule, _ = fired[0]  # the checked policy always ends with a catch-all
        dept = self._departments[rule.department]
        overnight = not desk_open
        handoff = None
        if rule.action is not Action.ANSWER:
            handoff = self._handoff[dept.id][inp.channel]
        fallback = None
        live = dept.kind is DepartmentKind.LIVE and rule.action is Action.TRANSFER
        if live and online is not None and dept.id not in online:
            fallback = f"ticket: nobody Online in {dept.id}"
            handoff = self._fallback[dept.id][inp.channel]
        ack = self._ack[inp.channel] if overnight else None
        if (handoff and "{" in handoff) or ack:
            opens = self.hours.describe(self.hours.next_open(inp.received_at), inp.received_at)
            handoff = texts.fill_runtime(handoff, opens) if handoff else None
            ack = texts.fill_runtime(ack, opens) if ack else None
        if rule.action is Action.ESCALATE_CRISIS:
            priority = Priority.URGENT
        else:
            priority = Priority.HIGH if overnight else Priority.NORMAL
        keyword = None
        if inp.channel.value == "sms" and len(text.tokens) == 1:
            keyword = self._keywords.get(text.tokens[0])
        # every value below is built here from the validated policy, so the models are
        # constructed without re-validation (pydantic validation was a large share of a call)
        return Decision.model_construct(
            action=rule.action,
            department=dept.id,
            priority=priority,
            overnight=overnight,
            rules=[RuleHit.model_construct(rule_id=r.id, matched=words) for r, words in fired],
            handoff_text=handoff,
            guidance=guidance_for(rule, dept, full, self._extractor, fallback),
            fallback=fallback,
            after_hours_ack=ack,
            keyword_reply=keyword,
            policy_version=self.version,
        )
