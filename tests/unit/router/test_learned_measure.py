"""Measuring the shipped router on a labelled file (learned/measure.py) and the figures it is
stated in (learned/metrics.py): counts per language, shares as markdown, rules alone or with
the model, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.router.learned import LearnedModel, default_model_path, load_model, measure
from services.router.learned.data import Example, read
from services.router.learned.metrics import Counts, Outcome, as_json, tally
from services.router.learned.model import CRISIS
from services.router.policy import Policy, default_policy_path, load_policy
from shared.events import Channel, PatronRole

# Each route below is pinned elsewhere: the rules' in test_router_rules.py (routing samples
# and one case per rule), the model's Spanish route and its review of the Spanish crisis in
# test_router_learned.py.
LABELLED = [
    ("chat", "Can I renew my book online?", "en", "transfer", "nw-circulation"),
    ("sms", "im going to hurt myself tonight", "en", "escalate_crisis", "care-team"),
    ("chat", "¿cómo cito una página web en formato APA?", "es", "transfer", "writing-center"),
    ("chat", "ya no quiero vivir, tengo las pastillas aquí", "es", "escalate_crisis", "care-team"),
]


@pytest.fixture(scope="module")
def model() -> LearnedModel:
    """The model shipped with the router."""
    return load_model(default_model_path())


@pytest.fixture(autouse=True)
def _parsed_once(monkeypatch: pytest.MonkeyPatch, policy: Policy, model: LearnedModel) -> None:
    """main() reads the shipped policy and model from their files: hand it the session's
    copies of the same files instead of parsing them again for every test."""

    def read_policy(path: Path) -> Policy:
        return policy if path == default_policy_path() else load_policy(path)

    def read_model(path: Path) -> LearnedModel:
        return model if path == default_model_path() else load_model(path)

    monkeypatch.setattr(measure, "load_policy", read_policy)
    monkeypatch.setattr(measure, "load_model", read_model)


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """The four messages as a labelled JSON-lines file (no author named in it)."""
    path = tmp_path / "blind9.jsonl"
    lines = [
        json.dumps(
            {
                "channel": ch,
                "text": text,
                "lang": lang,
                "expect": {"action": action, "department": dept},
            }
        )
        for ch, text, lang, action, dept in LABELLED
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def example(label: str, lang: str = "en") -> Example:
    """A labelled example whose text does not matter to the counts."""
    return Example(Channel.CHAT, "x", None, PatronRole.UNKNOWN, lang, "a", None, label)


def outcome(
    label: str,
    route: str,
    *,
    escalated: bool = False,
    review: bool = False,
    lang: str = "en",
    seen_lang: str | None = None,
) -> Outcome:
    """How one example was decided."""
    return Outcome(example(label, lang), route, escalated, review, seen_lang or lang, 0.5)


def test_counts_separate_crises_from_everyday_questions() -> None:
    """Crises count as caught when escalated or flagged; an everyday question counts as a
    false escalation when escalated and as a review flag only when flagged and not escalated."""
    c = Counts()
    for o in (
        outcome(CRISIS, CRISIS, escalated=True),
        outcome(CRISIS, "answer/reference", review=True),
        outcome(CRISIS, "answer/reference"),
        outcome("answer/reference", "answer/reference"),
        outcome("answer/reference", CRISIS, escalated=True, review=True),
        outcome("answer/reference", "answer/reference", review=True, seen_lang="es"),
    ):
        c.add(o)
    assert c.as_dict() == {
        "n": 6,
        "correct": 3,
        "crisis": 3,
        "caught": 2,
        "escalated": 1,
        "non_crisis": 3,
        "false_escalations": 1,
        "review_flags": 1,
        "lang_right": 5,
    }


def test_tally_counts_by_the_examples_language_and_for_all() -> None:
    """The example's language decides the group, not the detected one."""
    got = tally(
        [
            outcome("answer/reference", "answer/reference"),
            outcome(CRISIS, CRISIS, escalated=True, lang="es", seen_lang="en"),
            outcome("answer/reference", "transfer/tutoring", lang="es"),
        ]
    )
    assert {k: c.n for k, c in got.items()} == {"en": 1, "es": 2, "all": 3}
    assert got["es"].lang_right == 1 and got["es"].escalated == 1
    assert as_json(got)["all"]["correct"] == 2


def test_a_row_states_shares_with_their_counts_and_dashes_for_none() -> None:
    """Each share with its counts; a group with no crises shows a dash, not 0%."""
    counts = {**Counts().as_dict(), "n": 8, "correct": 6, "non_crisis": 8, "review_flags": 1}
    assert Counts.row("blind, English", counts) == (
        "| blind, English | 8 | 75.0% (6/8) | - | - | 0.0% (0/8) | 12.5% (1/8) |"
    )
    header = Counts.header().splitlines()
    assert len(header) == 2 and header[0].count("|") == header[1].count("|") == 8


def test_decide_all_with_the_model(policy: Policy, model: LearnedModel, labelled: Path) -> None:
    """The router's own path: the English crisis escalated by its rule, the Spanish crisis
    at least flagged, the Spanish citation question routed by the model; the model's risk
    and detected language are kept."""
    got = measure.decide_all(policy, model, read(labelled, "blind9"))
    assert [o.route for o in got[:3]] == [
        "transfer/nw-circulation",
        CRISIS,
        "transfer/writing-center",
    ]
    assert got[1].escalated and not got[0].escalated
    assert got[3].escalated or got[3].review
    assert got[2].lang == "es"
    assert all(0.0 <= o.risk <= 1.0 for o in got) and got[1].risk > got[0].risk


def test_decide_all_rules_only_has_no_risk_or_review(policy: Policy, labelled: Path) -> None:
    """Without the model nothing is flagged for review and no risk is scored."""
    got = measure.decide_all(policy, None, read(labelled, "blind9"))
    assert [o.route for o in got[:2]] == ["transfer/nw-circulation", CRISIS]
    assert [o.review for o in got] == [False] * 4
    assert [o.risk for o in got] == [0.0] * 4


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """measure.main's output; it must exit 0."""
    assert measure.main(argv) == 0
    return capsys.readouterr().out


def test_main_prints_the_table_per_language(
    labelled: Path, model: LearnedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    """Header, then English, Spanish or Spanglish and all, named by file and model version."""
    lines = run([str(labelled)], capsys).splitlines()
    assert "\n".join(lines[:2]) == Counts.header()
    name = f"blind9.jsonl, rules + model {model.version}"
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        f"| {name}, English",
        f"| {name}, Spanish or Spanglish",
        f"| {name}, all",
    ]
    assert lines[2].startswith(f"| {name}, English | 2 | 100.0% (2/2) | 100.0% (1/1) |")
    assert lines[4].split(" | ")[1] == "4"


def test_main_rules_only_as_json(labelled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--rules-only --json: the counts per language, nothing flagged for review."""
    counts: dict[str, dict[str, Any]] = json.loads(
        run([str(labelled), "--rules-only", "--json"], capsys)
    )
    assert set(counts) == {"en", "es", "all"}
    assert counts["all"]["n"] == 4 and counts["all"]["crisis"] == 2
    assert counts["en"] == {
        "n": 2,
        "correct": 2,
        "crisis": 1,
        "caught": 1,
        "escalated": 1,
        "non_crisis": 1,
        "false_escalations": 0,
        "review_flags": 0,
        "lang_right": 2,
    }
    assert counts["all"]["review_flags"] == 0


def test_main_rules_only_table(labelled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--rules-only names "rules alone" in the table."""
    out = run([str(labelled), "--rules-only"], capsys)
    assert "| blind9.jsonl, rules alone, all | 4 |" in out


def test_main_with_the_model_catches_the_spanish_crisis_as_json(
    labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the model the Spanish crisis counts as caught and the Spanish question as right."""
    counts = json.loads(run([str(labelled), "--json"], capsys))
    assert counts["es"]["caught"] == 1 and counts["es"]["correct"] >= 1
    assert counts["all"]["caught"] == 2
