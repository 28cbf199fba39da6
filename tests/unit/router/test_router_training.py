"""The committed model is what train.py makes of the committed data (reproducible, no download).

The full by-author measurement takes minutes (`python -m services.router.learned.train
--check` compares it too); here the data's fingerprint and one fit of the shipped model.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from services.router.learned import data, default_model_path

META = json.loads(default_model_path().with_suffix(".json").read_text("utf-8"))


def test_model_was_trained_on_the_committed_data() -> None:
    """Every input file's hash matches the model's record: retrain after changing the data."""
    train = pytest.importorskip("services.router.learned.train")
    assert train.inputs_digest(data.CORPUS, data.PROJECT) == META["inputs"]


@pytest.mark.slow  # trains the net again: about a minute
def test_retraining_reproduces_the_committed_weights() -> None:
    """One fit on the same data gives the committed vocabulary and (to float32) weights."""
    train = pytest.importorskip("services.router.learned.train")
    rows = data.load_all()
    arrays: dict[str, Any] = train.fit(rows, train.features(rows))
    with np.load(default_model_path(), allow_pickle=False) as npz:
        assert arrays["vocab"].tolist() == npz["vocab"].tolist()
        assert arrays["classes"].tolist() == META["classes"]
        for name in ("idf", "coef", "intercept", "lang_coef", "lang_intercept"):
            np.testing.assert_allclose(arrays[name], npz[name], rtol=1e-3, atol=1e-3)


def test_model_was_trained_with_the_committed_rules() -> None:
    """The thresholds are chosen around what the rules escalate: retrain after a rule change
    (anything but the words of a keyword reply, `loader.routing_version`)."""
    from services.router.policy import default_policy_path, load_policy

    assert META["routing_version"] == load_policy(default_policy_path()).routing_version


def test_the_routing_version_ignores_only_the_keyword_replies_words(policy_text: str) -> None:
    from services.router.policy import parse_policy

    shipped = parse_policy(policy_text.encode())
    reworded = parse_policy(policy_text.replace("Text your question any time.", "Ask us.").encode())
    assert reworded.version != shipped.version
    assert reworded.routing_version == shipped.routing_version
    hours = '  friday:    [{open: "08:00", close: "17:00"}]'
    changed = parse_policy(policy_text.replace(hours, hours.replace("17:00", "12:00")).encode())
    assert changed.routing_version != shipped.routing_version
