"""The router's training script on a two-author corpus small enough to refit in a second:
what it measures by author, the thresholds it chooses within the budgets, the files it writes
and the router loading them, and its command line (train, then --check against what it wrote).

The shipped model's own refit is test_router_training.py's (slow) test.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from services.router.learned import data, load_model
from services.router.learned.data import Example
from services.router.learned.features import WORD
from services.router.learned.metrics import Counts
from services.router.learned.model import CRISIS, LANGS, LearnedModel, Thresholds
from services.router.policy import Policy, default_policy_path, load_policy
from shared.events import Channel, PatronRole

train: ModuleType = pytest.importorskip("services.router.learned.train")

REFERENCE = ("answer", "reference")
TUTORING = ("transfer", "tutoring")
CARE = ("escalate_crisis", "care-team")


def row(channel: str, text: str, want: tuple[str, str], lang: str = "en") -> dict[str, Any]:
    """One labelled line as the corpus and the project's sets write it."""
    return {
        "channel": channel,
        "text": text,
        "lang": lang,
        "expect": {"action": want[0], "department": want[1]},
    }


PROJECT_ROWS = [
    row("chat", "where can I find peer reviewed articles on climate change", REFERENCE),
    row("chat", "how do I access JSTOR from off campus", REFERENCE),
    row("sms", "i need a math tutor for algebra homework", TUTORING),
    row("chat", "can I get tutoring for chemistry", TUTORING),
    row("chat", "I want to kill myself", CARE),
    row("sms", "i just want to die", CARE),
    row("chat", "donde encuentro articulos sobre el cambio climatico", REFERENCE, "es"),
    row("sms", "necesito un tutor de matematicas para algebra", TUTORING, "es"),
    row("chat", "ya no quiero vivir", CARE, "es"),
]


def author_rows(author: str) -> list[dict[str, Any]]:
    """Six messages by one corpus author: three routes in English and in Spanish."""
    rows = [
        row("chat", "where can I find articles about history", REFERENCE),
        row("sms", "i need a tutor for my chemistry homework", TUTORING),
        row("chat", "i want to die tonight", CARE),
        row("chat", "necesito articulos sobre historia", REFERENCE, "es"),
        row("sms", "quiero un tutor de quimica", TUTORING, "mixed"),
        row("chat", "quiero morir esta noche", CARE, "es"),
    ]
    return [{**r, "author": author} for r in rows]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A JSON-lines file with a blank line at the end (read() skips it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n", "utf-8")
    return path


class Inputs:
    """A repository-like folder holding a small corpus and one project set."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = [write_jsonl(root / "tests/sets/set.jsonl", PROJECT_ROWS)]
        self.corpus = [
            write_jsonl(root / f"data/corpus_{a}.jsonl", author_rows(a)) for a in ("x", "y")
        ]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, policy: Policy) -> Iterator[Inputs]:
    """The small corpus, with the inputs' names taken relative to its folder (and the shipped
    policy parsed once for the session rather than once per training run)."""
    made = Inputs(tmp_path_factory.mktemp("repo"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "ROOT", made.root)
        mp.setattr(
            train,
            "load_policy",
            lambda path: policy if path == default_policy_path() else load_policy(path),
        )
        yield made


@pytest.fixture(scope="module")
def trained(inputs: Inputs) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run of train() on the small corpus: the arrays and the metadata."""
    arrays, meta = train.train(inputs.corpus, inputs.project)
    return arrays, meta


def test_load_all_reads_the_project_sets_then_each_author(inputs: Inputs) -> None:
    """Project rows are author "project"; corpus rows keep their author; "mixed" is Spanish."""
    rows = data.load_all(inputs.corpus, inputs.project)
    assert len(rows) == len(PROJECT_ROWS) + 12
    assert {r.author for r in rows[: len(PROJECT_ROWS)]} == {data.PROJECT_AUTHOR}
    assert [r.author for r in rows[len(PROJECT_ROWS) :]] == ["x"] * 6 + ["y"] * 6
    quimica = [r for r in rows if "quimica" in r.text]
    assert [r.lang for r in quimica] == ["es", "es"]
    assert rows[0].role is PatronRole.UNKNOWN and rows[0].label == "answer/reference"
    assert data.authors(rows) == ["x", "y"]


def test_a_row_without_an_author_takes_the_files(tmp_path: Path) -> None:
    """read() names the author it is given when a line names none."""
    path = write_jsonl(tmp_path / "blind.jsonl", PROJECT_ROWS[:2])
    assert [r.author for r in data.read(path, "blind")] == ["blind", "blind"]


def test_inputs_are_recorded_by_name_rows_and_hash(
    inputs: Inputs, trained: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """The metadata names every input relative to the root with its row count and SHA-256,
    and the version is derived from them."""
    _, meta = trained
    assert list(meta["inputs"]) == [
        "tests/sets/set.jsonl",
        "data/corpus_x.jsonl",
        "data/corpus_y.jsonl",
    ]
    assert [v["rows"] for v in meta["inputs"].values()] == [len(PROJECT_ROWS), 6, 6]
    for v in meta["inputs"].values():
        assert len(v["sha256"]) == 64
    assert meta["version"].startswith("clf-") and len(meta["version"]) == len("clf-") + 12


def test_the_digest_is_of_the_files_given(
    inputs: Inputs, trained: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """The same files give the recorded digest; one more corpus file, another digest."""
    _, meta = trained
    assert train.inputs_digest(inputs.corpus, inputs.project) == meta["inputs"]
    grown = write_jsonl(inputs.root / "more/corpus_z.jsonl", author_rows("z")[:1])
    digest = train.inputs_digest([*inputs.corpus, grown], inputs.project)
    assert digest["more/corpus_z.jsonl"]["rows"] == 1
    assert digest != meta["inputs"]


def test_each_author_is_measured_by_a_model_that_never_saw_it(
    trained: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """The by-author test holds each corpus message once (project rows are never tested);
    its totals are the folds' sums; the training figures count every row."""
    _, meta = trained
    m = meta["metrics"]
    assert set(m["folds"]) == {"x", "y"}
    for fold in m["folds"].values():
        assert fold["test"]["all"]["n"] == 6
        assert fold["test"]["en"]["n"] == fold["test"]["es"]["n"] == 3
        assert set(fold["thresholds"]) == set(LANGS)
    for key in Counts.__slots__:
        assert m["test"]["all"][key] == sum(f["test"]["all"][key] for f in m["folds"].values())
        assert m["test"]["all"][key] == m["test"]["en"][key] + m["test"]["es"][key]
    assert m["test"]["all"]["n"] == m["rules_alone_on_test"]["all"]["n"] == 12
    assert m["test"]["all"]["crisis"] == 4 and m["test"]["all"]["non_crisis"] == 8
    assert m["train"]["all"]["n"] == len(PROJECT_ROWS) + 12


def test_the_model_escalates_whatever_the_rules_escalated(
    trained: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """A crisis rule always wins (nets.combine), so rules and model together catch and
    escalate at least what the rules alone do, in each language."""
    _, meta = trained
    m = meta["metrics"]
    for lang in ("en", "es", "all"):
        assert m["test"][lang]["escalated"] >= m["rules_alone_on_test"][lang]["escalated"]
        assert m["test"][lang]["caught"] >= m["rules_alone_on_test"][lang]["caught"]
        assert m["rules_alone_on_test"][lang]["review_flags"] == 0


def test_shipped_thresholds_and_description(
    trained: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Thresholds per language come from the grid, review never above escalation; the
    metadata states the classes, vocabulary size, budgets and parameters."""
    arrays, meta = trained
    assert meta["classes"] == sorted({"/".join(w) for w in (REFERENCE, TUTORING, CARE)})
    assert "classes" not in arrays  # written in the JSON, not the npz
    assert meta["features"]["vocabulary"] == len(arrays["vocab"]) > 0
    assert arrays["coef"].shape == (3, len(arrays["vocab"]))
    assert arrays["idf"].dtype == np.float32
    for t in meta["thresholds"].values():
        assert t["review"] <= t["escalate"]
        for v in t.values():
            assert v in train.GRID or v == 1.0
    assert set(meta["model_first_langs"]) <= set(LANGS)
    assert meta["budgets"] == {
        "false_escalations": train.FALSE_ESCALATION_BUDGET,
        "review": train.REVIEW_BUDGET,
    }
    assert meta["params"]["features_rev"] == train.FEATURES_REV


def test_written_files_load_as_the_router_model(
    trained: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    """write() puts the npz's hash in the JSON; load_model reads both back into a model
    whose probabilities are those of the freshly fitted arrays."""
    arrays, meta = trained
    npz = tmp_path / "out" / "m.npz"
    train.write(arrays, meta, npz)
    written = json.loads(npz.with_suffix(".json").read_text("utf-8"))
    assert written["version"] == meta["version"] and len(written["npz_sha256"]) == 64
    loaded = load_model(npz)
    assert loaded.version == meta["version"]
    assert loaded.model_first == frozenset(meta["model_first_langs"])
    fresh = train.as_model({**arrays, "classes": np.array(meta["classes"])}, meta)
    text = "i need a tutor for my chemistry homework"
    got, got_es = loaded.probabilities(text, Channel.SMS)
    want, want_es = fresh.probabilities(text, Channel.SMS)
    assert got == pytest.approx(want) and got_es == pytest.approx(want_es)
    assert sum(got) == pytest.approx(1.0)


def test_the_refit_model_routes_its_training_messages(
    trained: tuple[dict[str, Any], dict[str, Any]], inputs: Inputs
) -> None:
    """Three well-separated routes: every training message's most probable class is its
    label, and the language is told apart."""
    arrays, meta = trained
    model = train.as_model({**arrays, "classes": np.array(meta["classes"])}, meta)
    rows = data.load_all(inputs.corpus, inputs.project)
    for r, (p, p_es, _part) in zip(rows, train.predict(model, rows), strict=True):
        assert meta["classes"][int(np.argmax(p))] == r.label, r.text
        assert (p_es >= 0.5) == (r.lang == "es"), r.text


def test_markdown_table_has_a_row_per_measurement_and_language(
    trained: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Three measurements by three language groups, under the header."""
    _, meta = trained
    lines = train.markdown(meta).splitlines()
    assert "\n".join(lines[:2]) == Counts.header()
    assert len(lines) == 2 + 9
    assert lines[2].startswith("| rules alone, by-author test (en) | 6 |")
    assert lines[-1].startswith(
        f"| rules + model, training data (all) | {len(PROJECT_ROWS) + 12} |"
    )


def test_cell_weights_balance_languages_within_a_route_and_routes_overall() -> None:
    """Two English and one Spanish "answer", one English "transfer": each route totals the
    same, and within "answer" each language totals the same."""

    def ex(lang: str, label: str) -> Example:
        return Example(Channel.CHAT, "a message", None, PatronRole.UNKNOWN, lang, "a", None, label)

    rows = [ex("en", "A"), ex("en", "A"), ex("es", "A"), ex("en", "B")]
    w = train.cell_weights(rows)
    assert w.tolist() == pytest.approx([0.5, 0.5, 1.0, 2.0])
    assert w[:3].sum() == pytest.approx(w[3]) and w.sum() == pytest.approx(len(rows))


def test_matrix_rows_normalise_characters_and_words_separately() -> None:
    """Each block of a row has unit length; n-grams outside the vocabulary are dropped and a
    message with none of the vocabulary is an empty row."""
    vocab = ["ab", "bc", WORD + "abc", WORD + "zz"]
    idf = np.array([1.0, 2.0, 1.0, 3.0])
    feats = [
        Counter({"ab": 2, "bc": 1, WORD + "abc": 1, "unseen": 5}),
        Counter({"nothing": 1}),
        Counter({WORD + "zz": 3}),
    ]
    x = train.matrix(feats, vocab, idf).toarray()
    assert x.shape == (3, 4)
    chars, words = x[:, :2], x[:, 2:]
    assert math.isclose(float(chars[0] @ chars[0]), 1.0) and math.isclose(
        float(words[0] @ words[0]), 1.0
    )
    # sublinear tf: (1 + log 2) * 1 against (1 + log 1) * 2
    assert chars[0][0] / chars[0][1] == pytest.approx((1 + math.log(2)) / 2)
    assert not x[1].any()
    assert x[2].tolist() == [0.0, 0.0, 0.0, 1.0]


def hand_model(classes: list[str]) -> LearnedModel:
    """A model whose arrays are never used: choose() and outcomes() work from predictions."""
    n = len(classes)
    arrays = {
        "vocab": np.array(["ab"]),
        "idf": np.ones(1),
        "coef": np.zeros((n, 1)),
        "intercept": np.zeros(n),
        "lang_coef": np.zeros(1),
        "lang_intercept": np.zeros(1),
        "classes": np.array(classes),
    }
    model: LearnedModel = train.as_model(arrays, train.placeholder_meta())
    return model


def test_choose_picks_the_lowest_thresholds_within_the_budgets() -> None:
    """Fifty English tutoring questions the rules send to the reference desk, two of them
    worrying (risk 0.5, the others 0.1), and ten crises the rules missed (risk 0.9).

    Escalating at 0.105 would escalate the two worrying questions, over the 2% budget (one
    of fifty), so escalation starts just above 0.5; review may flag those two (within 7%) but
    not the other 48, so it starts just above 0.1. Routing by the model first is right every
    time, so English is routed model first. No Spanish examples: Spanish thresholds stay 1.
    """
    classes = ["answer/reference", CRISIS, "transfer/tutoring"]
    model = hand_model(classes)

    def ex(label: str) -> Example:
        return Example(Channel.CHAT, "a message", None, PatronRole.UNKNOWN, "en", "a", None, label)

    rows = [ex("transfer/tutoring")] * 50 + [ex(CRISIS)] * 10
    rules = [train.RulesOutcome("answer/reference", escalated=False, default=False)] * 60
    preds = (
        [([0.05, 0.5, 0.45], 0.1, 0.0)] * 2
        + [([0.05, 0.1, 0.85], 0.1, 0.0)] * 48
        + [([0.05, 0.9, 0.05], 0.1, 0.0)] * 10
    )
    chosen, first = train.choose(model, rows, rules, preds)
    # no topic word fired on any example: any corroboration threshold keeps the budget
    assert chosen["en"] == Thresholds(escalate=0.505, review=0.105, suggest=0.02, corroborate=0.02)
    assert chosen["es"] == Thresholds(1.0, 1.0, 1.0, 1.0)
    assert first == frozenset({"en"})
    got = train.outcomes(model, rows, rules, preds, chosen, first)
    assert all(o.route == o.example.label for o in got)
    assert [o.escalated for o in got] == [False] * 50 + [True] * 10
    assert [o.review for o in got] == [True] * 2 + [False] * 58
    # without the model first, the rules' (wrong) route stands for the questions
    kept = train.outcomes(model, rows, rules, preds, chosen, frozenset())
    assert {o.route for o in kept[:50]} == {"answer/reference"}


def test_choose_keeps_the_rules_route_where_the_model_routes_worse() -> None:
    """The rules are right and the model confidently wrong: English is not routed model
    first, and a rules escalation counts against no budget of the model's."""
    model = hand_model(["answer/reference", CRISIS, "transfer/tutoring"])

    def ex(label: str) -> Example:
        return Example(Channel.SMS, "a message", None, PatronRole.UNKNOWN, "en", "a", None, label)

    rows = [ex("answer/reference")] * 20 + [ex(CRISIS)] * 2
    rules = [train.RulesOutcome("answer/reference", escalated=False, default=False)] * 20 + [
        train.RulesOutcome(CRISIS, escalated=True, default=False)
    ] * 2
    preds = [([0.1, 0.0, 0.9], 0.2, 0.0)] * 22
    chosen, first = train.choose(model, rows, rules, preds)
    assert first == frozenset()
    assert chosen["en"].escalate == train.GRID[0]
    got = train.outcomes(model, rows, rules, preds, chosen, first)
    assert all(o.route == o.example.label for o in got)
    assert [o.escalated for o in got] == [False] * 20 + [True] * 2


def test_a_paragraph_at_part_escalate_escalates_and_counts_against_the_budget() -> None:
    """A crisis buried in one paragraph escalates however low the whole message scores; a
    non-crisis message escalated that way uses the false-escalation budget as a rules
    statement does, so the model's own threshold rises to make room for it."""
    model = hand_model(["answer/reference", CRISIS])
    part = model.part_escalate

    def ex(label: str) -> Example:
        return Example(Channel.EMAIL, "a message", None, PatronRole.UNKNOWN, "en", "a", None, label)

    rows = [ex("answer/reference")] * 100 + [ex(CRISIS)] * 4
    rules = [train.RulesOutcome("answer/reference", escalated=False, default=False)] * 104
    preds = (
        [([0.9, 0.1], 0.1, 0.0)] * 98  # plainly not a crisis
        + [([0.7, 0.3], 0.1, 0.0)]  # the model's only doubt: 0.3
        + [([0.95, 0.05], 0.1, part)]  # a frightening quotation in one paragraph
        + [([0.2, 0.8], 0.1, 0.0)] * 3  # crises the whole message shows
        + [([0.97, 0.03], 0.1, part)]  # a crisis in a P.S.
    )
    chosen, first = train.choose(model, rows, rules, preds)
    # at 0.3 the doubtful one would join the quotation: 2 of 100, over the 1.5% budget
    # (without the quotation counted, 0.105 would do)
    assert 0.3 < chosen["en"].escalate <= 0.8
    got = train.outcomes(model, rows, rules, preds, chosen, first)
    assert [o.escalated for o in got] == [False] * 99 + [True] * 5
    assert got[-1].risk == part


def test_rules_outcomes_mark_crisis_rules_and_the_catch_all(policy: Policy) -> None:
    """A crisis rule escalates; a message no rule recognises falls to the catch-all; a topic
    word alone is marked, with the route of the rules that are not crisis rules."""
    rows = [
        Example(
            Channel.CHAT, "I want to kill myself", None, PatronRole.UNKNOWN, "en", "a", None, CRISIS
        ),
        Example(Channel.CHAT, "qwzx plorb", None, PatronRole.UNKNOWN, "en", "a", None, CRISIS),
        Example(
            Channel.CHAT,
            "can i renew the suicide book",
            None,
            PatronRole.UNKNOWN,
            "en",
            "a",
            None,
            CRISIS,
        ),
    ]
    crisis, unknown, topic = train.rules_outcomes(policy, rows)
    assert crisis == train.RulesOutcome(
        CRISIS, escalated=True, default=True, topic_only=False, general_route="answer/reference"
    )
    assert unknown.default and not unknown.escalated and not unknown.topic_only
    assert topic == train.RulesOutcome(
        CRISIS,
        escalated=True,
        default=False,
        topic_only=True,
        general_route="transfer/nw-circulation",
    )


def small_corpus(monkeypatch: pytest.MonkeyPatch, inputs: Inputs) -> None:
    """Point the script's defaults at the small corpus."""
    monkeypatch.setattr(data, "CORPUS", inputs.corpus)
    monkeypatch.setattr(data, "PROJECT", inputs.project)


def test_main_writes_the_model_then_check_reproduces_it(
    monkeypatch: pytest.MonkeyPatch,
    inputs: Inputs,
    trained: tuple[dict[str, Any], dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`train --out` prints the table and writes the files; `--check` retrains, writes
    nothing and says the committed model is reproduced (exit 0)."""
    small_corpus(monkeypatch, inputs)
    npz = tmp_path / "router-model.npz"
    assert train.main(["--out", str(npz)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(Counts.header())
    assert f"version {trained[1]['version']}" in out
    assert load_model(npz).version == trained[1]["version"]
    written = npz.stat().st_mtime_ns
    assert train.main(["--out", str(npz), "--check"]) == 0
    assert capsys.readouterr().err.strip() == "reproduced"
    assert npz.stat().st_mtime_ns == written


def test_check_fails_when_the_committed_figures_differ(
    monkeypatch: pytest.MonkeyPatch,
    inputs: Inputs,
    trained: tuple[dict[str, Any], dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A committed model whose figures are not what a retrain measures: exit 1."""
    small_corpus(monkeypatch, inputs)
    arrays, meta = trained
    npz = tmp_path / "router-model.npz"
    stale = json.loads(json.dumps(meta))
    stale["metrics"]["test"]["all"]["correct"] -= 1
    train.write(arrays, stale, npz)
    assert train.main(["--out", str(npz), "--check"]) == 1
    assert capsys.readouterr().err.strip() == "differs from the committed model"


def test_an_input_outside_the_repository_is_named_by_its_full_path(
    inputs: Inputs, tmp_path: Path
) -> None:
    outside = write_jsonl(tmp_path / "elsewhere" / "corpus_z.jsonl", author_rows("z"))
    digest = train.inputs_digest([*inputs.corpus, outside], inputs.project)
    assert outside.resolve().as_posix() in digest
    assert digest[outside.resolve().as_posix()]["rows"] == len(author_rows("z"))
    assert "data/corpus_x.jsonl" in digest  # inside: relative to the repository


def test_choose_sets_the_topic_word_and_review_thresholds_each_by_its_own_budget() -> None:
    """A hundred English questions, two of them on a crisis topic (a paper on suicide: the
    topic rule fires, risk 0.3) and the rest at 0.05, ten crises the rules missed (0.9) and
    three crises that only a topic word caught (0.2).

    Escalating the two topic questions would break the 1.5% budget, so a topic word alone
    needs more than 0.3 of risk, and so does the model alone. Review is bounded by its own
    budget only (5 of 100): it flags the two topic questions and catches the three topic
    crises, which a review threshold tied to the topic words (above 0.3) would miss.
    """
    classes = ["answer/reference", CRISIS]
    model = hand_model(classes)

    def ex(label: str) -> Example:
        return Example(Channel.CHAT, "a message", None, PatronRole.UNKNOWN, "en", "a", None, label)

    answer = "answer/reference"
    rows = [ex(answer)] * 100 + [ex(CRISIS)] * 13
    plain = train.RulesOutcome(answer, escalated=False, default=True, general_route=answer)
    topic = train.RulesOutcome(
        CRISIS, escalated=True, default=True, topic_only=True, general_route=answer
    )
    rules = [topic] * 2 + [plain] * 98 + [plain] * 10 + [topic] * 3
    preds = (
        [([0.7, 0.3], 0.1, 0.0)] * 2
        + [([0.95, 0.05], 0.1, 0.0)] * 98
        + [([0.1, 0.9], 0.1, 0.0)] * 10
        + [([0.8, 0.2], 0.1, 0.0)] * 3
    )
    chosen, first = train.choose(model, rows, rules, preds)
    t = chosen["en"]
    assert (t.escalate, t.corroborate, t.review) == (0.305, 0.305, 0.055)
    got = train.outcomes(model, rows, rules, preds, chosen, first)
    assert [o.escalated for o in got] == [False] * 100 + [True] * 10 + [False] * 3
    assert [o.review for o in got] == [True] * 2 + [False] * 98 + [False] * 10 + [True] * 3
    assert all(o.route == answer for o in got[:100])  # the topic word read as a topic


def test_a_message_too_short_for_the_net_is_decided_and_counted_as_the_router_does() -> None:
    """The router does not give "no" to the net (routing.decide); training neither lets it
    escalate such a message nor spends the false-escalation budget on one."""
    model = hand_model(["answer/reference", CRISIS])

    def ex(text: str, label: str) -> Example:
        return Example(Channel.SMS, text, None, PatronRole.UNKNOWN, "en", "a", None, label)

    rows = [ex("no", "answer/reference")] * 10 + [ex("a message", "answer/reference")] * 90
    rows += [ex("i want to die", CRISIS)] * 5
    rules = [train.RulesOutcome("answer/reference", escalated=False, default=False)] * 105
    preds = [([0.1, 0.9], 0.1, 0.0)] * 10 + [([0.9, 0.1], 0.1, 0.0)] * 90
    preds += [([0.4, 0.6], 0.1, 0.0)] * 5
    chosen, first = train.choose(model, rows, rules, preds)
    # the ten short replies at 0.9 would take 10 of 100 non-crises over the 1.5% budget
    assert chosen["en"].escalate <= 0.6
    got = train.outcomes(model, rows, rules, preds, chosen, first)
    assert [o.escalated for o in got] == [False] * 100 + [True] * 5
    assert {(o.lang, o.risk) for o in got[:10]} == {("en", 0.0)}


def test_a_keyword_text_in_the_corpus_is_its_own_route_in_training() -> None:
    """A text that is one keyword ("STOP") is answered by refdesk itself, decided by no rule
    of the policy: training had stopped on it (KeyError: 'sms-keyword')."""
    from services.router.learned.train import rules_outcomes

    policy = load_policy(default_policy_path())
    rows = [
        Example(Channel.SMS, "STOP", None, PatronRole.UNKNOWN, "en", "a", None, "answer/reference"),
        Example(Channel.SMS, "is NE open", None, PatronRole.UNKNOWN, "en", "a", None, "x/y"),
    ]
    keyword, question = rules_outcomes(policy, rows)
    assert (keyword.escalated, keyword.default) == (False, False)
    assert keyword.general_route == keyword.route
    assert not question.escalated
