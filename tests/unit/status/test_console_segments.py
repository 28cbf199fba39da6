"""The composer's SMS segment counter (static/console/segments.js) counts as the notifier's
segments.py does: both run on the same strings, the JavaScript under Node.js."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from services.notifier.segments import GSM7_BASIC, GSM7_EXTENSION, sms_segments

SCRIPT = Path(__file__).resolve().parents[3] / "services/status/static/console/segments.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

EDGES = [
    "",
    "ok",
    "a" * 160,
    "a" * 161,
    "a" * 306,
    "a" * 307,
    "a" * 152 + "€",  # the escape pair moves whole to the next part
    "a" * 159 + "€",
    "a" * 158 + "€",
    "[" * 80,
    "[" * 81,
    "é" * 70,
    "ç" * 70,  # ç is not GSM-7 (only Ç is): UCS-2
    "x" * 69 + "\u2019",
    "x" * 70 + "\u2019",
    "x" * 66 + "😀",  # a surrogate pair is never split
    "x" * 67 + "😀" + "x" * 10,
    "😀" * 35,
    "😀" * 36,
    "Line one\r\nline two\n",
    "\u3000  padded \x1c\t",
    "\u00a0nbsp\u2028",
    "Hi {patron_first_name}, 10¢ at the NE campus ~ 50% off | ^ \\ {}",
    "Soy estudiante, ¿puedo renovar mi libro? ¡Gracias! Ñandú",
]


def _random_texts(n: int) -> list[str]:
    rng = random.Random(14)
    alphabet = sorted(GSM7_BASIC | GSM7_EXTENSION) + list("\u2019\u201c\u201dç😀中\u3000\u00a0")
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400))) for _ in range(n)]


def test_javascript_and_python_count_the_same_segments() -> None:
    texts = EDGES + _random_texts(300)
    program = (
        f"const s = require({json.dumps(str(SCRIPT))});"
        "const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(texts.map(t => [s.smsSegments(t), s.pyStrip(t)])));"
    )
    assert NODE is not None
    run = subprocess.run(
        [NODE, "-e", program],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results = json.loads(run.stdout)
    for text, ((encoding, segments), stripped) in zip(texts, results, strict=True):
        assert (encoding, segments) == sms_segments(text), repr(text)
        assert stripped == text.strip(), repr(text)


def test_the_composer_names_what_left_gsm7_and_offers_plain_twins() -> None:
    """The warning said only "a character outside GSM-7 (an emoji or a curly quote)": a pasted
    non-breaking space, invisible, left the librarian nothing to find."""
    texts = [
        "We\u2019re open\u00a0until 9 \u2014 bring your ID\u2026 😀 中",
        "\u201cquoted\u201d\u200bword\ttab \u2022 item",
    ]
    program = (
        f"const s = require({json.dumps(str(SCRIPT))});"
        "const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify("
        "texts.map(t => [s.outsideGsm7(t).map(s.describe), s.plain(t)])));"
    )
    assert NODE is not None
    run = subprocess.run(
        [NODE, "-e", program], input=json.dumps(texts), capture_output=True, text=True, check=True
    )
    (names, plain), (names2, plain2) = json.loads(run.stdout)
    assert names == [
        "curly apostrophe \u2019",
        "non-breaking space",
        "long dash \u2014",
        "ellipsis \u2026",
        "\u201c😀\u201d",
        "\u201c中\u201d",
    ]
    assert plain == "We're open until 9 - bring your ID... 😀 中"
    assert names2 == [
        "curly quote \u201c",
        "curly quote \u201d",
        "zero-width space",
        "tab",
        "bullet \u2022",
    ]
    # every twin is GSM-7, as the notifier counts it
    assert sms_segments(plain2) == ("GSM-7", 1) and plain2 == '"quoted"word tab - item'
