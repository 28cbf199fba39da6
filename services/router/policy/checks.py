"""Semantic checks of a schema-valid policy; each problem carries the path to its YAML node."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.clock import DESK_TZ
from shared.events import Action, Channel

from . import texts
from .hours import NOTED, note_of, weekly_text
from .model import DepartmentKind, HoursException, PolicyDoc, TermGroup
from .normalise import Normaliser
from .reach import unreachable

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

KIND_OF_ACTION = {
    Action.ANSWER: DepartmentKind.DESK,
    Action.TRANSFER: DepartmentKind.LIVE,
    Action.EMAIL_CIRCULATION: DepartmentKind.EMAIL,
    Action.REFER_FACULTY: DepartmentKind.REFERRAL,
    Action.REFER_COUNSELING: DepartmentKind.REFERRAL,
    Action.ESCALATE_CRISIS: DepartmentKind.ESCALATION,
}


def text_values(doc: PolicyDoc, lang: str = "en") -> dict[str, str]:
    """Placeholders every patron text may use: links, settings and the week's hours in the
    text's language (`{weekly_hours}`)."""
    values = dict(doc.links)
    values["sms_reply_window_hours"] = str(doc.settings.sms_reply_window_hours)
    values["crisis_acknowledge_minutes"] = str(doc.settings.crisis_acknowledge_minutes)
    values["weekly_hours"] = weekly_text(doc.hours.week(), lang)
    return values


def _patterns(group: TermGroup, loc: Loc) -> Iterator[Problem]:
    """Rule patterns compile and do not use named groups (the matcher names them)."""
    for k, pattern in enumerate(group.patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            yield (*loc, "patterns", k), f"bad regex {pattern!r}: {exc}"
            continue
        if "(?P<" in pattern:
            yield (*loc, "patterns", k), "rule patterns may not use named groups"


def _terms(group: TermGroup, loc: Loc, norm: Normaliser) -> Iterator[Problem]:
    """Phrases and stems normalise to words; stems start with at least three letters."""
    for k, phrase in enumerate(group.phrases):
        if not norm.tokens(phrase):
            yield (*loc, "phrases", k), f"phrase {phrase!r} has no words"
    for k, stem in enumerate(group.stems):
        words = norm.tokens(stem)
        if not words or len(words[0]) < 3:
            yield (*loc, "stems", k), f"stem {stem!r} must start with a word of 3+ letters"
    yield from _patterns(group, loc)


def _rules(doc: PolicyDoc, norm: Normaliser) -> Iterator[Problem]:
    """Departments exist and fit the action; terms are valid; every rule can fire."""
    depts = {d.id: d for d in doc.departments}
    seen: set[str] = set()
    for i, rule in enumerate(doc.rules):
        loc: Loc = ("rules", i)
        if rule.id in seen:
            yield (*loc, "id"), f"duplicate rule id {rule.id!r}"
        seen.add(rule.id)
        dept = depts.get(rule.department)
        if dept is None:
            yield (*loc, "department"), f"rule {rule.id!r}: unknown department {rule.department!r}"
        elif dept.kind is not KIND_OF_ACTION[rule.action]:
            msg = f"rule {rule.id!r}: action {rule.action} needs a {KIND_OF_ACTION[rule.action]}"
            yield (*loc, "department"), f"{msg} department, {dept.id!r} is {dept.kind}"
        c = rule.conditions
        for name, group in (("any_of", c.any_of), ("none_of", c.none_of)):
            if group is not None:
                yield from _terms(group, (*loc, "conditions", name), norm)
        for k, group in enumerate(c.all_of):
            yield from _terms(group, (*loc, "conditions", "all_of", k), norm)
        for k, cue in enumerate(c.cues):
            yield from _terms(cue, (*loc, "conditions", "cues", k), norm)
    for later, earlier in unreachable(doc.rules, norm.tokens):
        first, second = doc.rules[earlier].id, doc.rules[later].id
        yield (
            ("rules", later),
            (
                f"rule {second!r} is unreachable: rule {first!r} fires first on every message it"
                " matches"
            ),
        )
    general = [i for i, r in enumerate(doc.rules) if not r.crisis]
    if not general or not doc.rules[general[-1]].conditions.is_unconditional():
        yield ("rules",), "the last non-crisis rule must be an unconditional catch-all"


def _text(
    template: str,
    loc: Loc,
    values: dict[str, str],
    sms: bool,
    lang: str = "en",
    exceptions: Sequence[HoursException] = (),
) -> Iterator[Problem]:
    """A patron text uses known placeholders and, for SMS, fits one segment (two when it
    names the desk's next hours exception), however its placeholders are filled."""
    try:
        unknown = sorted(set(texts.placeholders(template)) - set(values) - texts.RUNTIME_FIELDS)
    except ValueError as exc:
        yield loc, f"malformed placeholder: {exc}"
        return
    if unknown:
        yield loc, f"unknown placeholder(s) {', '.join(unknown)}"
        return
    if sms:
        problem = texts.sms_problem(
            texts.prerender(template, values),
            lang,
            dated=bool(exceptions),
            exceptions=" ".join(sorted((note_of(e, lang) for e in exceptions), key=len)[-NOTED:]),
        )
        if problem:
            yield loc, problem


def _texts(doc: PolicyDoc) -> Iterator[Problem]:
    """Every patron-facing text of the policy."""
    values = text_values(doc)
    ex = doc.hours_exceptions
    for i, dept in enumerate(doc.departments):
        dvals = {**values, "name": dept.name, "contact": dept.contact}
        for ch, template in dept.handoff.items():
            loc: Loc = ("departments", i, "handoff", ch.value)
            yield from _text(template, loc, dvals, ch is Channel.SMS, exceptions=ex)
        for ch, template in dept.fallback.message.items() if dept.fallback else ():
            loc = ("departments", i, "fallback", "message", ch.value)
            yield from _text(template, loc, dvals, ch is Channel.SMS, exceptions=ex)
    for ch, template in doc.after_hours_ack.items():
        yield from _text(
            template, ("after_hours_ack", ch.value), values, ch is Channel.SMS, exceptions=ex
        )
    for word, template in doc.sms_keywords.items():
        yield from _text(template, ("sms_keywords", word), values, True, exceptions=ex)
    for code in doc.languages:
        yield from _translation(doc, code, text_values(doc, code))


def _translation(doc: PolicyDoc, code: str, values: dict[str, str]) -> Iterator[Problem]:
    """A translation covers every department and channel the English texts do."""
    tr = doc.languages[code]
    ex = doc.hours_exceptions
    base: Loc = ("languages", code)
    known = {d.id for d in doc.departments}
    for dept_id in sorted(tr.handoff.keys() - known):
        yield (*base, "handoff", dept_id), f"unknown department {dept_id!r}"
    for name, group in (("fallback", tr.fallback), ("after_hours_ack", tr.after_hours_ack)):
        if set(group) != set(Channel):
            yield (*base, name), f"{code}: {name} needs chat, sms and email texts"
    for ch, template in tr.after_hours_ack.items():
        loc: Loc = (*base, "after_hours_ack", ch.value)
        yield from _text(template, loc, values, ch is Channel.SMS, code, ex)
    for word, template in tr.sms_keywords.items():
        if not re.fullmatch(r"[A-Z]+", word):
            yield (*base, "sms_keywords", word), f"sms keyword {word!r} must be one upper-case word"
        # sent by SMS as written: GSM-7 and one segment, as in English
        yield from _text(template, (*base, "sms_keywords", word), values, True, exceptions=ex)
    for dept in doc.departments:
        dvals = {**values, "name": dept.name, "contact": dept.contact}
        texts_of = tr.handoff.get(dept.id, {})
        if dept.handoff and set(texts_of) != set(dept.handoff):
            yield (*base, "handoff"), f"{code}: department {dept.id!r} needs every channel"
        for ch, template in texts_of.items():
            loc = (*base, "handoff", dept.id, ch.value)
            yield from _text(template, loc, dvals, ch is Channel.SMS, code, ex)
        for ch, template in tr.fallback.items() if dept.fallback else ():
            loc = (*base, "fallback", ch.value)
            yield from _text(template, loc, dvals, ch is Channel.SMS, code, ex)


def _extraction(doc: PolicyDoc) -> Iterator[Problem]:
    """Extraction patterns compile and capture a `value` group."""
    for field in ("patron_name", "tcc_id", "item"):
        for k, pattern in enumerate(getattr(doc.extract, field)):
            loc: Loc = ("extract", field, k)
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                yield loc, f"bad regex {pattern!r}: {exc}"
                continue
            if "value" not in compiled.groupindex:
                yield loc, "extraction patterns need a (?P<value>...) group"


def _carrier_keywords(doc: PolicyDoc) -> Iterator[Problem]:
    """Keywords are answered at the desk: their department exists and is of kind desk."""
    handling = doc.sms_carrier_keywords
    dept = next((d for d in doc.departments if d.id == handling.department), None)
    loc: Loc = ("sms_carrier_keywords", "department")
    if dept is None:
        yield loc, f"unknown department {handling.department!r}"
    elif dept.kind is not DepartmentKind.DESK:
        yield loc, f"keywords are answered at the desk; {dept.id!r} is {dept.kind}"


def _overlapping_exceptions(doc: PolicyDoc) -> Iterator[Problem]:
    """No day is in two hours exceptions: which hours it keeps would be a guess."""
    claimed: dict[date, int] = {}
    for k, exc in enumerate(doc.hours_exceptions):
        for day in exc.days():
            first = claimed.setdefault(day, k)
            if first != k:
                name = doc.hours_exceptions[first].name
                yield ("hours_exceptions", k), f"{day} is also in {name!r}"
                break


def _department_addresses(doc: PolicyDoc) -> Iterator[Problem]:
    """An `also_from` address is its department's alone: mail from one another department
    lists too would be read as whichever the file names first. (Two departments sharing a
    `contact`, one mailbox for both, stays allowed: the first named answers for it.)"""
    owner: dict[str, str] = {}
    for dept in doc.departments:
        owner.setdefault(dept.contact.lower(), dept.id)
    for k, dept in enumerate(doc.departments):
        for n, address in enumerate(dept.also_from):
            first = owner.setdefault(address.lower(), dept.id)
            if address.lower() == dept.contact.lower():
                yield ("departments", k, "also_from", n), f"{address} is its contact already"
            elif first != dept.id:
                yield ("departments", k, "also_from", n), f"{address} is also {first!r}'s"


def problems(doc: PolicyDoc, norm: Normaliser) -> list[Problem]:
    """All semantic problems of a policy, in file order of the checks."""
    found: list[Problem] = []
    try:
        ZoneInfo(doc.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        found.append((("timezone",), f"unknown timezone {doc.timezone!r}"))
    else:
        if doc.timezone != DESK_TZ.key:
            # the console, the reports and staff emails read times in shared.clock.DESK_TZ: a
            # policy in another zone would open and close the desk by hours they do not show
            found.append(
                (("timezone",), f"the desk's times are {DESK_TZ.key}: {doc.timezone!r} differs")
            )
    if not any(doc.hours.week()):
        found.append((("hours",), "desk hours have no opening interval"))
    found += _overlapping_exceptions(doc)
    found += _department_addresses(doc)
    ids = [d.id for d in doc.departments]
    for i, dept_id in enumerate(ids):
        if dept_id in ids[:i]:
            found.append((("departments", i, "id"), f"duplicate department id {dept_id!r}"))
    found += _rules(doc, norm)
    found += _texts(doc)
    found += _extraction(doc)
    found += _carrier_keywords(doc)
    known = set(ids)
    for i, ex in enumerate(doc.examples):
        if ex.expect.department not in known:
            msg = f"example expects unknown department {ex.expect.department!r}"
            found.append((("examples", i, "expect", "department"), msg))
    return found
