"""The policy's semantic checks (policy/checks.py), one broken variant of the shipped policy
per problem: each is named with the path to its YAML node, and the shipped policy has none.

test_router_check_policy.py runs a few of these through check-policy and the YAML lines;
here the checks themselves run on the parsed document (no compile per case).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from services.router.policy import PolicyError, default_policy_path, load_policy, parse_policy
from services.router.policy.checks import Loc, problems
from services.router.policy.model import PolicyDoc
from services.router.policy.normalise import Normaliser

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def shipped() -> Doc:
    """The shipped policy as plain YAML data."""
    data: Doc = yaml.safe_load(default_policy_path().read_text("utf-8"))
    return data


def found(data: Doc) -> list[tuple[Loc, str]]:
    """The semantic problems of a policy given as YAML data."""
    doc = PolicyDoc.model_validate(data)
    return problems(doc, Normaliser(doc.normalise.shorthand))


def rule(data: Doc, rule_id: str) -> dict[str, Any]:
    """One rule of the policy by id."""
    return next(r for r in data["rules"] if r["id"] == rule_id)


def index_of(data: Doc, section: str, item_id: str) -> int:
    """Where a rule or department sits in its list."""
    return next(i for i, x in enumerate(data[section]) if x["id"] == item_id)


def dept(data: Doc, dept_id: str) -> dict[str, Any]:
    """One department of the policy by id."""
    found_dept: dict[str, Any] = data["departments"][index_of(data, "departments", dept_id)]
    return found_dept


def test_the_shipped_policy_has_no_problem(shipped: Doc) -> None:
    """The baseline every variant below breaks in one place."""
    assert found(copy.deepcopy(shipped)) == []


def _named_group(d: Doc) -> None:
    rule(d, "tutoring")["conditions"]["any_of"]["patterns"] = [r"\b(?P<who>tutor)\b"]


def _wordless_phrase(d: Doc) -> None:
    rule(d, "tutoring")["conditions"]["any_of"]["phrases"].append("?!")


def _short_stem(d: Doc) -> None:
    rule(d, "tutoring")["conditions"]["any_of"]["stems"].append("tu")


def _duplicate_rule(d: Doc) -> None:
    rule(d, "campus-ne")["id"] = "tutoring"


def _wrong_kind(d: Doc) -> None:
    rule(d, "tutoring")["department"] = "counseling"


def _malformed_placeholder(d: Doc) -> None:
    dept(d, "reference")["handoff"]["chat"] = "A librarian {name will help."


def _unknown_placeholder(d: Doc) -> None:
    dept(d, "reference")["handoff"]["email"] = "Someone from {department} will reply."


def _no_catch_all(d: Doc) -> None:
    rule(d, "reference-default")["conditions"] = {"any_of": {"phrases": ["library"]}}


def _unknown_translated_department(d: Doc) -> None:
    es = d["languages"]["es"]["handoff"]
    es["tutorias"] = es["tutoring"]


def _translation_missing_a_channel(d: Doc) -> None:
    del d["languages"]["es"]["after_hours_ack"]["email"]


def _lower_case_keyword(d: Doc) -> None:
    d["languages"]["es"]["sms_keywords"]["ayuda"] = "Escribe tu pregunta."


def _translated_handoff_short_of_a_channel(d: Doc) -> None:
    del d["languages"]["es"]["handoff"]["tutoring"]["sms"]


def _long_translated_fallback(d: Doc) -> None:
    d["languages"]["es"]["fallback"]["sms"] = "á" * 140


def _bad_extraction_regex(d: Doc) -> None:
    d["extract"]["tcc_id"].append(r"(?P<value>\d{7}")


def _extraction_without_value(d: Doc) -> None:
    d["extract"]["item"].append(r"book called (\w+)")


def _unknown_timezone(d: Doc) -> None:
    d["timezone"] = "America/Fort_Worth"


def _another_timezone(d: Doc) -> None:
    d["timezone"] = "America/Denver"


def _never_open(d: Doc) -> None:
    d["hours"] = {day: [] for day in d["hours"]}


def _duplicate_department(d: Doc) -> None:
    dept(d, "campus-se")["id"] = "campus-ne"


def _example_unknown_department(d: Doc) -> None:
    d["examples"][0]["expect"]["department"] = "care-teem"


def _sms_keyword_too_long(d: Doc) -> None:
    d["sms_keywords"]["HELP"] = "x" * 161


def second(d: Doc, section: str, item_id: str) -> int:
    """Where the second rule or department with this id sits (the duplicate)."""
    ids = [x["id"] for x in d[section]]
    return ids.index(item_id, ids.index(item_id) + 1)


def loc_of(d: Doc, section: str, item_id: str) -> int:
    """Shorthand for index_of in the cases table."""
    return index_of(d, section, item_id)


CASES: list[tuple[str, Callable[[Doc], None], Callable[[Doc], Loc], str]] = [
    (
        "named group",
        _named_group,
        lambda d: ("rules", loc_of(d, "rules", "tutoring"), "conditions", "any_of", "patterns", 0),
        "rule patterns may not use named groups",
    ),
    (
        "phrase without words",
        _wordless_phrase,
        lambda d: (
            "rules",
            loc_of(d, "rules", "tutoring"),
            "conditions",
            "any_of",
            "phrases",
            len(rule(d, "tutoring")["conditions"]["any_of"]["phrases"]) - 1,
        ),
        "phrase '?!' has no words",
    ),
    (
        "short stem",
        _short_stem,
        lambda d: ("rules", loc_of(d, "rules", "tutoring"), "conditions", "any_of", "stems", 1),
        "stem 'tu' must start with a word of 3+ letters",
    ),
    (
        "duplicate rule id",
        _duplicate_rule,
        lambda d: ("rules", second(d, "rules", "tutoring"), "id"),
        "duplicate rule id 'tutoring'",
    ),
    (
        "action needs another kind of department",
        _wrong_kind,
        lambda d: ("rules", loc_of(d, "rules", "tutoring"), "department"),
        "rule 'tutoring': action transfer needs a live department, 'counseling' is referral",
    ),
    (
        "malformed placeholder",
        _malformed_placeholder,
        lambda d: ("departments", loc_of(d, "departments", "reference"), "handoff", "chat"),
        "malformed placeholder: ",
    ),
    (
        "unknown placeholder",
        _unknown_placeholder,
        lambda d: ("departments", loc_of(d, "departments", "reference"), "handoff", "email"),
        "unknown placeholder(s) department",
    ),
    (
        "no catch-all",
        _no_catch_all,
        lambda d: ("rules",),
        "the last non-crisis rule must be an unconditional catch-all",
    ),
    (
        "translation of an unknown department",
        _unknown_translated_department,
        lambda d: ("languages", "es", "handoff", "tutorias"),
        "unknown department 'tutorias'",
    ),
    (
        "translation short of a channel",
        _translation_missing_a_channel,
        lambda d: ("languages", "es", "after_hours_ack"),
        "es: after_hours_ack needs chat, sms and email texts",
    ),
    (
        "lower-case translated keyword",
        _lower_case_keyword,
        lambda d: ("languages", "es", "sms_keywords", "ayuda"),
        "sms keyword 'ayuda' must be one upper-case word",
    ),
    (
        "translated hand-off short of a channel",
        _translated_handoff_short_of_a_channel,
        lambda d: ("languages", "es", "handoff"),
        "es: department 'tutoring' needs every channel",
    ),
    (
        "translated fallback over two UCS-2 segments",
        _long_translated_fallback,
        lambda d: ("languages", "es", "fallback", "sms"),
        "SMS text is 140 UCS-2 characters; two segments hold 134",
    ),
    (
        "extraction pattern that does not compile",
        _bad_extraction_regex,
        lambda d: ("extract", "tcc_id", len(d["extract"]["tcc_id"]) - 1),
        r"bad regex '(?P<value>\\d{7}': ",
    ),
    (
        "extraction pattern without a value group",
        _extraction_without_value,
        lambda d: ("extract", "item", len(d["extract"]["item"]) - 1),
        "extraction patterns need a (?P<value>...) group",
    ),
    (
        "unknown timezone",
        _unknown_timezone,
        lambda d: ("timezone",),
        "unknown timezone 'America/Fort_Worth'",
    ),
    (
        # the console, reports and staff emails read the desk's times in America/Chicago
        "a timezone other than the desk's",
        _another_timezone,
        lambda d: ("timezone",),
        "the desk's times are America/Chicago: 'America/Denver' differs",
    ),
    (
        "desk never open",
        _never_open,
        lambda d: ("hours",),
        "desk hours have no opening interval",
    ),
    (
        "duplicate department id",
        _duplicate_department,
        lambda d: ("departments", second(d, "departments", "campus-ne"), "id"),
        "duplicate department id 'campus-ne'",
    ),
    (
        "example expecting an unknown department",
        _example_unknown_department,
        lambda d: ("examples", 0, "expect", "department"),
        "example expects unknown department 'care-teem'",
    ),
    (
        "SMS keyword reply over one segment",
        _sms_keyword_too_long,
        lambda d: ("sms_keywords", "HELP"),
        "SMS text is 161 GSM-7 characters; one segment holds 160",
    ),
]


@pytest.mark.parametrize(
    ("break_it", "where", "message"),
    [pytest.param(b, w, m, id=name) for name, b, w, m in CASES],
)
def test_each_problem_is_named_at_its_node(
    shipped: Doc,
    break_it: Callable[[Doc], None],
    where: Callable[[Doc], Loc],
    message: str,
) -> None:
    """The broken node is named with the problem (and, for a problem with a message of its
    own, nothing else is reported)."""
    data = copy.deepcopy(shipped)
    break_it(data)
    got = found(data)
    assert (where(data), message) in [(loc, msg[: len(message)]) for loc, msg in got], got


def test_a_policy_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    """A missing file, bytes that are not UTF-8 and YAML that is not a mapping are refused
    before any check, each saying what is wrong."""
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "none.yaml")
    with pytest.raises(PolicyError, match=r"^p.yaml: policy is not UTF-8 \(byte 7\)$"):
        parse_policy(b"label: \xff", source="p.yaml")
    with pytest.raises(PolicyError, match=r"^p.yaml:1: the policy must be a YAML mapping$") as err:
        parse_policy(b"- rules\n- departments\n", source="p.yaml")
    assert err.value.line == 1


def without_email(fallback: dict[str, Any]) -> dict[str, Any]:
    """A copy of a fallback (shared between departments by a YAML anchor) minus its email."""
    return {**fallback, "message": {k: v for k, v in fallback["message"].items() if k != "email"}}


SCHEMA_CASES: list[tuple[str, Callable[[Doc], None], str]] = [
    (
        "interval closing before it opens",
        lambda d: d["hours"]["monday"][0].update(close="07:00"),
        "close must be after open",
    ),
    (
        "department without an SMS hand-off",
        lambda d: dept(d, "tutoring")["handoff"].pop("sms"),
        "handoff needs chat, sms and email texts",
    ),
    (
        "live department without a fallback",
        lambda d: dept(d, "tutoring").pop("fallback"),
        "a live department needs a fallback",
    ),
    (
        "fallback without an email text",
        lambda d: dept(d, "tutoring").update(
            fallback=without_email(dept(d, "tutoring")["fallback"])
        ),
        "fallback.message needs chat, sms and email texts",
    ),
    (
        "crisis rule that does not escalate",
        lambda d: rule(d, "crisis-unsafe").update(action="answer", department="reference"),
        "crisis: true goes with action escalate_crisis, and only with it",
    ),
    (
        "escalation outside a crisis rule",
        lambda d: rule(d, "tutoring").update(action="escalate_crisis", department="care-team"),
        "crisis: true goes with action escalate_crisis, and only with it",
    ),
    (
        "link name that is not an identifier",
        lambda d: d["links"].update({"Survey-Link": "https://example.edu"}),
        "link name 'Survey-Link' is not a lower-case identifier",
    ),
    (
        "translation keyed by a three-letter code",
        lambda d: d["languages"].update(spa=d["languages"]["es"]),
        "language 'spa' must be an ISO 639-1 code other than en",
    ),
    (
        "translation into English",
        lambda d: d["languages"].update(en=d["languages"]["es"]),
        "language 'en' must be an ISO 639-1 code other than en",
    ),
    (
        "lower-case SMS keyword",
        lambda d: d["sms_keywords"].update(Hours=d["sms_keywords"]["HOURS"]),
        "sms keyword 'Hours' must be one upper-case word",
    ),
]


@pytest.mark.parametrize(
    ("break_it", "message"), [pytest.param(b, m, id=name) for name, b, m in SCHEMA_CASES]
)
def test_each_schema_rule_refuses_its_variant(
    shipped: Doc, break_it: Callable[[Doc], None], message: str
) -> None:
    """The document model itself refuses these, before the semantic checks run."""
    data = copy.deepcopy(shipped)
    break_it(data)
    with pytest.raises(ValidationError) as err:
        PolicyDoc.model_validate(data)
    assert [e["msg"] for e in err.value.errors()] == [f"Value error, {message}"]
