"""The trained classifier, loaded once at start: crisis risk, a suggested route and the language.

The model is two files written by train.py: `<name>.npz` (numpy arrays only, loaded with
allow_pickle=False) and `<name>.json` (version, classes, thresholds, how it was measured).
The JSON names the SHA-256 of the npz, so weights and thresholds cannot be mixed up.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, pairwise, repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.events import Action, Channel, PatronRole

from .features import (
    CACHED_WORD,
    CHANNEL_MARK,
    MAX_CHARS,
    ROLE_FACULTY,
    WORD,
    WORDS,
    fold,
    message_text,
    word_grams,
)

CRISIS = "escalate_crisis/care-team"
"""The class whose probability is the crisis risk."""
LANGS = ("en", "es")
"""The languages the model tells apart (Spanish mixed with English counts as Spanish)."""


PARTS = re.compile(r"\n\s*\n")
"""Where a message splits into the parts scored on their own: blank lines (paragraphs)."""
MIN_LETTERS = 4
"""The fewest letters (text and subject together) the net reads a message with. A reply of
"no", "si", "ya", "ok" or "y" is a handful of n-grams that weigh whatever they weighed inside
longer messages: before this floor "no" scored a crisis risk of 0.89 and "ya" 0.99. Shorter
messages are decided by the rules alone, which name the short crisis statements ("kms")."""


def readable(text: str, subject: str | None = None) -> bool:
    """Whether a message has MIN_LETTERS letters for the net to read (a photo alone has none).
    It stops at the fourth letter: an email's text runs to 100,000 characters."""
    letters = 0
    for ch in chain(text, subject or ""):
        if ch.isalpha():
            letters += 1
            if letters >= MIN_LETTERS:
                return True
    return False


def parts(text: str) -> list[str]:
    """The parts of a message body whose crisis risk is read on its own: its paragraphs, when
    it has more than one (none otherwise: the whole message is its only part)."""
    found = [part for part in PARTS.split(text) if part.strip()]
    return found if len(found) > 1 else []


def _counted(ids: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The distinct ids, sorted, and how often each occurs: `np.unique(ids, return_counts=True)`
    without its general-purpose layers (about a fifth faster at a message's few hundred ids)."""
    ids.sort()
    edges = np.empty(len(ids) + 1, dtype=bool)
    edges[0] = edges[-1] = True
    np.not_equal(ids[1:], ids[:-1], out=edges[1:-1])
    at = np.flatnonzero(edges)
    return ids[at[:-1]], np.diff(at)


class ModelError(Exception):
    """The model files are missing, inconsistent or not what this code reads."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where the learned net acts in one language (chosen by train.py, stored with the weights)."""

    escalate: float
    """risk at or above which a message the rules did not escalate is escalated"""
    review: float
    """risk at or above which it is routed normally but flagged for safety review"""
    suggest: float
    """probability at or above which the model's route replaces the rules' default"""
    corroborate: float
    """risk at or above which a crisis topic word alone (a `corroborate` rule: "suicide",
    "overdose") escalates; below it the word is read as a topic (and the message flagged when
    its risk reaches `review`). A model file without it uses its review threshold."""


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the model says about one message."""

    lang: str
    """ISO 639-1: "es" for Spanish or Spanish mixed with English, else "en\""""
    risk: float
    escalate: bool
    review: bool
    corroborates: bool
    """the risk reaches the corroboration threshold: a crisis topic word alone escalates"""
    best: tuple[Action, str]
    """the most probable non-crisis route"""
    suggestion: tuple[Action, str] | None
    """`best` when its probability clears `suggest`, else None"""
    confidence: float
    """probability of the most probable non-crisis route"""
    model_first: bool
    """the language is one where the suggestion replaces the rules' route, not only the default"""
    model_version: str


class LearnedModel:
    """Linear classifier over TF-IDF weighted character n-grams (one matrix product)."""

    def __init__(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        """Build from loaded arrays and metadata (use load_model)."""
        vocab = arrays["vocab"]
        self.version: str = meta["version"]
        self.meta = meta
        self.classes: list[tuple[Action, str]] = []
        for name in meta["classes"]:
            action, dept = name.split("/")
            self.classes.append((Action(action), dept))
        self._crisis = meta["classes"].index(CRISIS)
        self.thresholds = {
            lang: Thresholds(
                float(t["escalate"]),
                float(t["review"]),
                float(t["suggest"]),
                float(t.get("corroborate", t["review"])),
            )
            for lang, t in meta["thresholds"].items()
        }
        if set(self.thresholds) != set(LANGS):
            raise ModelError(f"thresholds are needed for {', '.join(LANGS)}")
        self.model_first: frozenset[str] = frozenset(meta.get("model_first_langs", []))
        self.part_escalate = float(meta.get("params", {}).get("part_escalate", math.inf))
        """a paragraph whose own risk reaches this escalates the message (a model file without
        it: never, and no paragraph is scored)"""
        grams = [str(g) for g in vocab.tolist()]
        n = len(grams)
        if arrays["coef"].shape != (len(self.classes), n) or arrays["idf"].shape != (n,):
            raise ModelError("model arrays do not match its vocabulary")
        # ids renumbered so that character n-grams come first and word features after
        # self._split: a message's sorted ids then hold each block as one slice
        order = sorted(range(n), key=lambda i: grams[i].startswith(WORD))
        ordered = [grams[i] for i in order]
        self._split = sum(1 for g in grams if not g.startswith(WORD))
        self._index: dict[str, int] = {g: i for i, g in enumerate(ordered[: self._split])}
        """character n-grams and markers by their text"""
        self._words: dict[str, int] = {g[1:]: i for i, g in enumerate(ordered) if i >= self._split}
        """word and word-pair features by their text without the WORD prefix"""
        self._unseen = n
        """the id of every word feature the model never saw: the last row, all zeros (its idf
        and weights), so it adds nothing to the logits or to its block's norm"""
        self._idf = np.append(arrays["idf"][order], 0.0).astype(np.float64)
        # one gather per message: class logits, then the language logit in the last column
        weights = np.hstack([arrays["coef"].T, arrays["lang_coef"].reshape(-1, 1)])
        self._weights = np.vstack([weights[order], np.zeros(weights.shape[1])]).astype(np.float64)
        self._bias = np.append(arrays["intercept"], arrays["lang_intercept"]).astype(np.float64)
        self._word_ids = lru_cache(maxsize=16_384)(self._ids_of_word)
        """most words of most messages repeat: their id arrays are cached per model"""
        self._channel_ids = {ch: self._ids_of_marker(mark) for ch, mark in CHANNEL_MARK.items()}
        self._faculty_ids = self._ids_of_marker(ROLE_FACULTY)

    def probabilities(
        self, text: str, channel: Channel, role: PatronRole = PatronRole.UNKNOWN
    ) -> tuple[list[float], float]:
        """Class probabilities (meta["classes"] order) and P(Spanish) for one message.

        The features are those of `features.blocks` (a test holds the two equal), gathered
        by id: a word's character n-grams are looked up once and cached as an id array, so a
        message costs one cache hit per word instead of a dictionary lookup per n-gram, and
        few numpy calls (at a few hundred n-grams a message, each call's overhead costs as
        much as its arithmetic).
        """
        folded = fold(text)
        parts = [
            self._word_ids(w) if len(w) <= CACHED_WORD else self._ids_of_word(w)
            for w in folded.split(" ")
        ]
        parts.append(self._channel_ids[channel])
        if role is PatronRole.FACULTY:
            parts.append(self._faculty_ids)
        tokens = WORDS.findall(folded)
        features = chain(tokens, map(" ".join, pairwise(tokens)))
        parts.append(np.fromiter(map(self._words.get, features, repeat(self._unseen)), np.intp))
        uniq, counts = _counted(np.concatenate(parts))
        x = np.log(counts)
        x += 1.0  # sublinear term frequency
        x *= self._idf[uniq]
        split = int(np.searchsorted(uniq, self._split))
        for block in (x[:split], x[split:]):  # each block L2-normalised on its own
            norm = math.sqrt(float(block @ block))
            if norm:
                block /= norm
        z = x @ self._weights[uniq] + self._bias
        logits = z.tolist()
        lang_logit = logits.pop()
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        total = sum(exps)
        return [e / total for e in exps], 1.0 / (1.0 + math.exp(-lang_logit))

    def _ids_of_marker(self, mark: str) -> npt.NDArray[np.intp]:
        """A channel or role marker's id, as a one-element array (empty if never seen)."""
        i = self._index.get(mark)
        return np.array([] if i is None else [i], dtype=np.intp)

    def _ids_of_word(self, word: str) -> npt.NDArray[np.intp]:
        """The vocabulary ids of one word's character n-grams (an unseen n-gram adds
        nothing: its idf and weights are zero, so it is left out)."""
        get = self._index.get
        return np.fromiter((i for g in word_grams(word) if (i := get(g)) is not None), np.intp)

    def assess(
        self,
        text: str,
        channel: Channel,
        role: PatronRole = PatronRole.UNKNOWN,
        subject: str | None = None,
    ) -> Assessment:
        """Risk, review and escalation verdicts, the suggested route and the language."""
        p, p_es, part = self.scores(text, channel, role, subject)
        return self.judge(p, p_es, self.thresholds, self.model_first, part)

    def scores(
        self,
        text: str,
        channel: Channel,
        role: PatronRole = PatronRole.UNKNOWN,
        subject: str | None = None,
    ) -> tuple[list[float], float, float]:
        """`probabilities` of the whole message, and the highest crisis probability of its
        paragraphs read one by one (0.0 for a message of one paragraph).

        A crisis written in one paragraph of a long email (a P.S. under a citation question, a
        last paragraph under a fee dispute) is diluted among the whole message's features,
        where the same paragraph alone scores as the crisis it is."""
        p, p_es = self.probabilities(message_text(text, subject), channel, role)
        if math.isinf(self.part_escalate):
            return p, p_es, 0.0
        crisis = self._crisis
        part = max(
            (self.probabilities(x, channel, role)[0][crisis] for x in parts(text[:MAX_CHARS])),
            default=0.0,
        )
        return p, p_es, part

    def judge(
        self,
        p: Sequence[float],
        p_es: float,
        thresholds: dict[str, Thresholds],
        model_first: frozenset[str],
        part: float = 0.0,
    ) -> Assessment:
        """An assessment from probabilities under given per-language thresholds (train.py
        tunes with it). The risk is the whole message's crisis probability, or its riskiest
        paragraph's (`part`) when that one alone reaches `part_escalate`."""
        crisis = self._crisis
        risk = float(p[crisis])
        if part >= self.part_escalate:
            risk = max(risk, float(part))
        best = max((i for i in range(len(p)) if i != crisis), key=p.__getitem__)
        confidence = float(p[best])
        lang = "es" if p_es >= 0.5 else "en"
        t = thresholds[lang]
        return Assessment(
            lang=lang,
            risk=risk,
            escalate=risk >= t.escalate,
            review=risk >= t.review,
            corroborates=risk >= t.corroborate,
            best=self.classes[best],
            suggestion=self.classes[best] if confidence >= t.suggest else None,
            confidence=confidence,
            model_first=lang in model_first,
            model_version=self.version,
        )


def default_model_path() -> Path:
    """The model shipped with the router (the npz; its JSON sits beside it)."""
    return Path(__file__).parents[1] / "data" / "model" / "router-model.npz"


def load_model(path: Path) -> LearnedModel:
    """Load `<name>.npz` and `<name>.json`; ModelError when missing or inconsistent."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        meta = json.loads(path.with_suffix(".json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the model: {exc}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if meta.get("npz_sha256") != digest:
        raise ModelError(f"{path}: weights do not match {path.with_suffix('.json').name}")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return LearnedModel(arrays, meta)
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{path}: not a router model: {exc}") from None
