"""Staff-facing guidance for a decision (kept free of message text except extracted fields)."""

from __future__ import annotations

from shared.events import Action, StaffGuidance

from .extract import Extractor
from .model import Department, Rule

_DEFAULT = {
    Action.ANSWER: "Answer at the reference desk.",
    Action.TRANSFER: "Transfer to {name} with a warm hand-off.",
    Action.EMAIL_CIRCULATION: "Email {contact} with the patron's name, TCC ID, item and details.",
    Action.REFER_FACULTY: "Refer to Faculty Support Tickets and the faculty directory.",
    Action.REFER_COUNSELING: "Refer to campus Counseling and Mental Health First Aid resources.",
    Action.ESCALATE_CRISIS: "Possible crisis: file a CARE Team report now and refer to Counseling.",
}


_CACHE: dict[tuple[str, str], StaffGuidance] = {}
"""Guidance without extracted data depends only on rule and department (frozen models)."""


def _summary(rule: Rule, dept: Department) -> str:
    """The rule's summary, or the action's default, with the department filled in."""
    return (rule.summary or _DEFAULT[rule.action]).format(name=dept.name, contact=dept.contact)


def guidance_for(
    rule: Rule,
    dept: Department,
    text: str,
    extractor: Extractor,
    fallback: str | None,
    given_name: str | None = None,
) -> StaffGuidance:
    """The summary for staff; for circulation e-mails, the extracted and missing fields (the
    patron's name as the channel gave it when the message names nobody: an email from
    "Begoña Ortíz" had told the managers the name was missing)."""
    if rule.action is not Action.EMAIL_CIRCULATION and not fallback:
        key = (rule.id, dept.id)
        cached = _CACHE.get(key)
        if cached is None:
            cached = _CACHE[key] = StaffGuidance(summary=_summary(rule, dept))
        return cached
    summary = _summary(rule, dept)
    if fallback:
        summary += f" Nobody from {dept.name} is Online: handle it as a ticket."
    if rule.action is not Action.EMAIL_CIRCULATION:
        return StaffGuidance(summary=summary)
    found = extractor.extract(text)
    if "patron_name" not in found and given_name and given_name.strip() and "@" not in given_name:
        found["patron_name"] = " ".join(given_name.split())
    missing = extractor.missing(found)
    if missing:
        summary += " Ask the patron for: " + ", ".join(missing).replace("_", " ") + "."
    return StaffGuidance(summary=summary, missing_fields=missing, extracted=found)
