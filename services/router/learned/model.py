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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.events import Action, Channel, PatronRole

from .features import blocks, message_text

CRISIS = "escalate_crisis/care-team"
"""The class whose probability is the crisis risk."""
LANGS = ("en", "es")
"""The languages the model tells apart (Spanish mixed with English counts as Spanish)."""


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


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the model says about one message."""

    lang: str
    """ISO 639-1: "es" for Spanish or Spanish mixed with English, else "en\""""
    risk: float
    escalate: bool
    review: bool
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
            lang: Thresholds(float(t["escalate"]), float(t["review"]), float(t["suggest"]))
            for lang, t in meta["thresholds"].items()
        }
        if set(self.thresholds) != set(LANGS):
            raise ModelError(f"thresholds are needed for {', '.join(LANGS)}")
        self.model_first: frozenset[str] = frozenset(meta.get("model_first_langs", []))
        self._index: dict[str, int] = {str(g): i for i, g in enumerate(vocab.tolist())}
        n = len(self._index)
        if arrays["coef"].shape != (len(self.classes), n) or arrays["idf"].shape != (n,):
            raise ModelError("model arrays do not match its vocabulary")
        # row n is all zeros: an n-gram the model never saw adds nothing (no masking needed)
        self._unknown = n
        self._idf = np.append(arrays["idf"], 0.0).astype(np.float64)
        # one gather per message: class logits, then the language logit in the last column
        weights = np.hstack([arrays["coef"].T, arrays["lang_coef"].reshape(-1, 1)])
        self._weights = np.vstack([weights, np.zeros((1, weights.shape[1]))]).astype(np.float64)
        self._bias = np.append(arrays["intercept"], arrays["lang_intercept"]).astype(np.float64)

    def probabilities(
        self, text: str, channel: Channel, role: PatronRole = PatronRole.UNKNOWN
    ) -> tuple[list[float], float]:
        """Class probabilities (meta["classes"] order) and P(Spanish) for one message.

        Few numpy calls on purpose: at a few hundred n-grams a message, each call's overhead
        costs as much as its arithmetic.
        """
        chars, words = blocks(text, channel, role)
        counted_chars, counted_words = Counter(chars), Counter(words)
        size = len(counted_chars) + len(counted_words)
        grams = chain(counted_chars, counted_words)
        ids = np.fromiter(map(self._index.get, grams, repeat(self._unknown)), np.intp, size)
        counts = chain(counted_chars.values(), counted_words.values())
        x = np.log(np.fromiter(counts, np.float64, size))
        x += 1.0  # sublinear term frequency
        x *= self._idf[ids]
        for block in (x[: len(counted_chars)], x[len(counted_chars) :]):
            norm = math.sqrt(float(block @ block))  # each block L2-normalised on its own
            if norm:
                block /= norm
        z = (x @ self._weights[ids] + self._bias).tolist()
        lang_logit = z.pop()
        top = max(z)
        exps = [math.exp(v - top) for v in z]
        total = sum(exps)
        return [e / total for e in exps], 1.0 / (1.0 + math.exp(-lang_logit))

    def assess(
        self,
        text: str,
        channel: Channel,
        role: PatronRole = PatronRole.UNKNOWN,
        subject: str | None = None,
    ) -> Assessment:
        """Risk, review and escalation verdicts, the suggested route and the language."""
        p, p_es = self.probabilities(message_text(text, subject), channel, role)
        return self.judge(p, p_es, self.thresholds, self.model_first)

    def judge(
        self,
        p: Sequence[float],
        p_es: float,
        thresholds: dict[str, Thresholds],
        model_first: frozenset[str],
    ) -> Assessment:
        """An assessment from probabilities under given per-language thresholds (train.py
        tunes with it)."""
        crisis = self._crisis
        risk = float(p[crisis])
        best = max((i for i in range(len(p)) if i != crisis), key=p.__getitem__)
        confidence = float(p[best])
        lang = "es" if p_es >= 0.5 else "en"
        t = thresholds[lang]
        return Assessment(
            lang=lang,
            risk=risk,
            escalate=risk >= t.escalate,
            review=risk >= t.review,
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
