"""The learned net: features, loading the shipped model, its language and risk verdicts, and
Spanish messages routed as their English equivalents through the real model."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from router_support import OPEN

from services.router import routing
from services.router.learned import LearnedModel, ModelError, default_model_path, load_model, train
from services.router.learned.features import (
    CHANNEL_MARK,
    MAX_CHARS,
    ROLE_FACULTY,
    WORD,
    fold,
    grams,
    message_text,
)
from services.router.learned.model import parts
from services.router.policy import DecisionInput, Policy
from shared.events import Action, Channel, PatronRole


@pytest.fixture(scope="session")
def model() -> LearnedModel:
    """The model shipped with the router."""
    return load_model(default_model_path())


FOLDS = [
    ("Contraseña", "contrasena"),
    ("¿Está abierta?", "¿esta abierta?"),
    ("can't  DON\u2019T", "cant dont"),
    ("TCC ID 0481127", "tcc id 0000000"),
    ("  línea\n\nnueva ", "linea nueva"),
]


@pytest.mark.parametrize(("text", "want"), FOLDS)
def test_fold(text: str, want: str) -> None:
    """Case, accents, apostrophes, digits and spacing do not change the features."""
    assert fold(text) == want


def test_grams_are_counted_with_markers_and_words() -> None:
    """Repeated n-grams repeat; the channel and faculty role are whole features; words and
    word pairs form the second block."""
    got = grams("no no", Channel.SMS, PatronRole.FACULTY)
    assert got.count(" no ") == 2 and got.count(WORD + "no") == 2
    assert CHANNEL_MARK[Channel.SMS] in got and ROLE_FACULTY in got
    assert got[-1] == WORD + "no no"
    assert ROLE_FACULTY not in grams("no", Channel.CHAT, PatronRole.STUDENT)


def test_the_shipped_model_loads_with_its_version(model: LearnedModel) -> None:
    """Version, thresholds per language and the crisis class come from the model's JSON."""
    meta = json.loads(default_model_path().with_suffix(".json").read_text("utf-8"))
    assert model.version == meta["version"] and model.version.startswith("clf-")
    assert set(model.thresholds) == {"en", "es"}
    for t in model.thresholds.values():
        assert 0 < t.review <= t.escalate <= 1
    assert (Action.ESCALATE_CRISIS, "care-team") in model.classes


def test_weights_that_do_not_match_their_json_are_refused(tmp_path: Path) -> None:
    """The JSON names the npz's SHA-256: a swapped weights file does not load."""
    npz = tmp_path / "router-model.npz"
    shutil.copy(default_model_path(), npz)
    meta = json.loads(default_model_path().with_suffix(".json").read_text("utf-8"))
    meta["npz_sha256"] = "0" * 64
    npz.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="do not match"):
        load_model(npz)


def test_a_missing_model_is_refused(tmp_path: Path) -> None:
    """A path without a model is a ModelError naming it."""
    with pytest.raises(ModelError, match="cannot read"):
        load_model(tmp_path / "none.npz")


LANGS = [
    ("what time does the library close tonight", "en"),
    ("can i renew my book online", "en"),
    ("hola a que hora abren mañana la biblioteca", "es"),
    ("perdí un libro de la biblioteca, cuánto tengo que pagar", "es"),
    ("necesito ayuda con mi bibliografía en formato APA por favor", "es"),
]


@pytest.mark.parametrize(("text", "lang"), LANGS)
def test_language(model: LearnedModel, text: str, lang: str) -> None:
    """English or Spanish, from the same features."""
    assert model.assess(text, Channel.CHAT).lang == lang


RISKS = [
    # text, at least flagged for review?
    ("I took all of my pills an hour ago and I feel really strange", True),
    ("ya no quiero vivir, tengo las pastillas aquí", True),
    ("my ex keeps showing up outside my apartment at night and I'm scared", True),
    ("what time does the library close tonight", False),
    ("¿cuánto cuesta imprimir a color?", False),
    ("where can I find peer reviewed articles on climate change", False),
]


@pytest.mark.parametrize(("text", "risky"), RISKS)
def test_risk(model: LearnedModel, text: str, risky: bool) -> None:
    """Clear crises score at least the review threshold; everyday questions stay below it."""
    seen = model.assess(text, Channel.CHAT)
    assert seen.review is risky, seen.risk
    assert seen.model_version == model.version


SPANISH_ROUTES = [
    ("¿puedo renovar mi libro? vence mañana", Action.TRANSFER, "nw-circulation"),
    (
        "perdí el libro que saqué y me llegó una multa",
        Action.EMAIL_CIRCULATION,
        "circulation-managers",
    ),
    ("¿cómo cito una página web en formato APA?", Action.TRANSFER, "writing-center"),
    ("quiero hacer una cita con un tutor de matemáticas", Action.TRANSFER, "tutoring"),
]


@pytest.mark.parametrize(("text", "action", "department"), SPANISH_ROUTES)
def test_spanish_routed_as_english(
    policy: Policy, model: LearnedModel, text: str, action: Action, department: str
) -> None:
    """Spanish messages go where their English equivalents go, with Spanish texts."""
    inp = DecisionInput(channel=Channel.CHAT, text=text, received_at=OPEN)
    got = routing.decide(policy, model, inp)
    assert (got.action, got.department, got.lang) == (action, department, "es")
    assert got.model_version == model.version and got.risk_score is not None


def test_the_model_reads_a_bounded_prefix(model: LearnedModel) -> None:
    """A long email costs no more than its first MAX_CHARS characters."""
    head = "my roommate said she took all her pills and won't wake up. "
    long = head + "quoted history " * 2_000
    assert len(message_text(long, "Re: help")) == MAX_CHARS
    assert model.assess(long, Channel.EMAIL, subject="Re: help").risk == pytest.approx(
        model.assess(long[: MAX_CHARS * 2], Channel.EMAIL, subject="Re: help").risk
    )


PARTED = [
    ("one paragraph, however long. " * 20, []),
    ("Hi,\n\nCan I renew?\n\nThanks", ["Hi,", "Can I renew?", "Thanks"]),
    ("line one\nline two", []),  # a line break is not a paragraph
    ("first\n \t \nsecond\n\n\n\n", ["first", "second"]),  # blank lines may hold spaces
]


@pytest.mark.parametrize(("text", "want"), PARTED)
def test_a_message_splits_into_paragraphs_when_it_has_several(text: str, want: list[str]) -> None:
    assert [p.strip() for p in parts(text)] == want


BURIED = (
    "Hello,\n\nHow do I cite a journal article with two authors in APA 7? My professor wants "
    "the DOI too and I can't find it on the PDF. Also, is the library open on Saturday?\n\n"
    "Thanks for your help with all of this,\nJordan\n\n"
    "p.s. i have been saving my pills and tonight i'm going to take all of them. sorry"
)


def test_a_crisis_in_one_paragraph_escalates_at_that_paragraphs_risk(
    model: LearnedModel,
) -> None:
    """A paragraph alone at or above part_escalate escalates the message and gives its risk;
    the route and the language stay the whole message's."""
    whole, whole_es = model.probabilities(message_text(BURIED, "APA question"), Channel.EMAIL)
    each = [model.probabilities(p, Channel.EMAIL)[0][model._crisis] for p in parts(BURIED)]
    got, got_es, part = model.scores(BURIED, Channel.EMAIL, subject="APA question")
    assert (got, got_es) == (whole, whole_es) and part == max(each)
    assert whole[model._crisis] < model.thresholds["en"].escalate < model.part_escalate <= part
    seen = model.assess(BURIED, Channel.EMAIL, subject="APA question")
    assert seen.risk == part and seen.escalate and seen.review
    assert (
        seen.best
        == model.classes[
            int(np.argmax([0.0 if i == model._crisis else x for i, x in enumerate(whole)]))
        ]
    )


def test_a_paragraph_below_part_escalate_leaves_the_whole_messages_risk(
    model: LearnedModel,
) -> None:
    p, p_es, _ = model.scores("Hi,\n\nCan I renew my book?\n\nThanks", Channel.EMAIL)
    seen = model.judge(p, p_es, model.thresholds, model.model_first, model.part_escalate - 0.01)
    assert seen.risk == p[model._crisis] and not seen.escalate


def test_a_model_file_without_part_escalate_scores_no_paragraph(tmp_path: Path) -> None:
    """Older model files were chosen without paragraphs: they neither score nor escalate one."""
    npz = tmp_path / "router-model.npz"
    shutil.copy(default_model_path(), npz)
    meta = json.loads(default_model_path().with_suffix(".json").read_text("utf-8"))
    del meta["params"]["part_escalate"]
    npz.with_suffix(".json").write_text(json.dumps(meta), "utf-8")
    older = load_model(npz)
    _, _, part = older.scores(BURIED, Channel.EMAIL, subject="APA question")
    assert part == 0.0
    assert not older.assess(BURIED, Channel.EMAIL, subject="APA question").escalate


def test_a_model_file_without_a_corroboration_threshold_uses_its_review_threshold(
    tmp_path: Path,
) -> None:
    """Older model files corroborated a crisis topic word at the review threshold."""
    npz = tmp_path / "router-model.npz"
    shutil.copy(default_model_path(), npz)
    meta = json.loads(default_model_path().with_suffix(".json").read_text("utf-8"))
    for t in meta["thresholds"].values():
        del t["corroborate"]
    npz.with_suffix(".json").write_text(json.dumps(meta), "utf-8")
    older = load_model(npz)
    for lang, t in older.thresholds.items():
        assert t.corroborate == t.review == meta["thresholds"][lang]["review"]
    shipped = load_model(default_model_path())
    assert any(t.corroborate != t.review for t in shipped.thresholds.values())


SAME_AS_TRAINING = [
    ("i need a tutor for my chemistry homework", Channel.SMS, PatronRole.STUDENT),
    ("no no no, the the book book", Channel.CHAT, PatronRole.UNKNOWN),
    ("Necesito renovar mis libros, ¿se puede por teléfono?", Channel.EMAIL, PatronRole.FACULTY),
    (
        "https://libguides.tccd.edu/c.php?g=1019497&p=7410447 supercalifragilistic",
        Channel.CHAT,
        PatronRole.UNKNOWN,
    ),
    ("zzqxj wvvk", Channel.SMS, PatronRole.UNKNOWN),
    ("", Channel.SMS, PatronRole.UNKNOWN),
]


@pytest.mark.parametrize(("text", "channel", "role"), SAME_AS_TRAINING)
def test_inference_reads_the_features_training_reads(
    model: LearnedModel, text: str, channel: Channel, role: PatronRole
) -> None:
    """The router's probabilities (ids gathered per word) equal those of the training path:
    `grams`, train.matrix's sublinear TF-IDF rows with a norm per block, then the weights."""
    with np.load(default_model_path(), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    row = train.matrix([Counter(grams(text, channel, role))], arrays["vocab"], arrays["idf"])
    logits = np.asarray(row @ arrays["coef"].T).ravel() + arrays["intercept"]
    want = np.exp(logits - logits.max())
    want /= want.sum()
    lang_logit = float((row @ arrays["lang_coef"].ravel())[0] + arrays["lang_intercept"][0])
    got, got_es = model.probabilities(text, channel, role)
    assert got == pytest.approx(want.tolist(), abs=1e-9)
    assert got_es == pytest.approx(1.0 / (1.0 + np.exp(-lang_logit)), abs=1e-9)


# Misroutes seen in the demo shift (docs/routing.md), fixed by more varied everyday data
# (corpus authors e-g), not by a rule or a threshold: each goes through the real model and
# the policy, as the router decides it.
DEMO_MISROUTES = [
    # channel, subject, text, role, the route, flagged for safety review?
    (
        Channel.EMAIL,
        "Reserves",
        "Do you have the Campbell Biology textbook on reserve? I need it for BIOL 1406.",
        PatronRole.STUDENT,
        (Action.ANSWER, "reference"),
    ),
    (
        Channel.EMAIL,
        "JSTOR",
        "How do I get into JSTOR from home? It keeps asking me to log in.",
        PatronRole.STUDENT,
        (Action.ANSWER, "reference"),
    ),
    (Channel.SMS, None, "a que hora cierran hoy", PatronRole.UNKNOWN, (Action.ANSWER, "reference")),
]


@pytest.mark.parametrize(("channel", "subject", "text", "role", "route"), DEMO_MISROUTES)
def test_everyday_questions_seen_misrouted_in_the_demo(
    policy: Policy,
    model: LearnedModel,
    channel: Channel,
    subject: str | None,
    text: str,
    role: PatronRole,
    route: tuple[Action, str],
) -> None:
    """A student's reserves question stays at the desk; a log-in question and a Spanish
    hours question are not flagged for safety review."""
    inp = DecisionInput(
        channel=channel, text=text, received_at=OPEN, patron_role=role, subject=subject
    )
    got = routing.decide(policy, model, inp)
    assert (got.action, got.department) == route
    assert not got.safety_review, got.risk_score


def test_a_photo_sent_without_words_is_not_judged_by_the_model(
    policy: Policy, model: LearnedModel
) -> None:
    """An MMS photo with no text: nothing for the model to read, so nothing to flag."""
    inp = DecisionInput(channel=Channel.SMS, text="", received_at=OPEN)
    got = routing.decide(policy, model, inp)
    assert (got.action, got.department) == (Action.ANSWER, "reference")
    assert not got.safety_review and got.risk_score is None


@pytest.mark.parametrize("text", ["no", "No.", "y", "a", "I", "si", "sí", "ya", "hoy", "ok", "👍"])
def test_a_reply_of_a_few_letters_is_not_judged_by_the_model(
    policy: Policy, model: LearnedModel, text: str
) -> None:
    """An outside probe's "no", answering a librarian, escalated to the CARE Team (0.89)."""
    got = routing.decide(
        policy, model, DecisionInput(channel=Channel.SMS, text=text, received_at=OPEN)
    )
    assert (got.action, got.department) == (Action.ANSWER, "reference")
    assert not got.safety_review and got.risk_score is None


@pytest.mark.parametrize(
    "text", ["help me", "hello? can someone help me", "ayúdame por favor", "hay alguien ahí?"]
)
def test_a_greeting_or_a_bare_plea_stays_at_the_desk(
    policy: Policy, model: LearnedModel, text: str
) -> None:
    """ "help me" went to the Writing Center (the net's guess on no content; after hours a
    ticket there): `reference-greeting` says `keep: true`, so the desk asks what they need."""
    got = routing.decide(
        policy, model, DecisionInput(channel=Channel.SMS, text=text, received_at=OPEN)
    )
    assert (got.action, got.department) == (Action.ANSWER, "reference")
    assert got.rules[0].rule_id == "reference-greeting"


@pytest.mark.parametrize("text", ["911", "someone call 911 please"])
def test_a_text_of_911_escalates_with_the_model_too(
    policy: Policy, model: LearnedModel, text: str
) -> None:
    got = routing.decide(
        policy, model, DecisionInput(channel=Channel.SMS, text=text, received_at=OPEN)
    )
    assert got.action is Action.ESCALATE_CRISIS


@pytest.mark.parametrize("text", ["kms", "quiero morir", "suicidal", "sobredosis", "want to die"])
def test_a_crisis_in_a_word_or_two_still_escalates(
    policy: Policy, model: LearnedModel, text: str
) -> None:
    """Below the floor the rules decide ("kms"); from four letters the model reads."""
    got = routing.decide(
        policy, model, DecisionInput(channel=Channel.SMS, text=text, received_at=OPEN)
    )
    assert got.action is Action.ESCALATE_CRISIS
