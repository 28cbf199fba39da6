"""refdesk's own words, taken out of a message before it is decided.

A ticket system's acknowledgement, an autoresponder or a patron's reply may quote what refdesk
sent without the quote marks ingest removes ("Your message: ..."). The after-hours
acknowledgement ends "If you are in danger, call 911", and the crisis resources say "in crisis
or thinking about harming yourself": read as the patron's, a quoted acknowledgement sent a
nursing student's question to the CARE Team, and a ticket system quoting the crisis resources
back opened a new crisis, alert and resources email each round, without end (an outside
review). The sentences of every patron text the policy holds (hand-offs, fallbacks,
acknowledgements, keyword replies, in every language) and of the notifier's crisis resources
(`NOTIFIER_SENTENCES`; a test holds them to the templates) are removed wherever they stand
whole, re-wrapped or quoted (">", quote marks); the placeholders filled at send time match any
short run of words. A sentence is searched for only in a message holding its longest word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NOTIFIER_SENTENCES = (
    # services/notifier/templates/*/crisis_resources*.j2, as sent ({} the filled values)
    "If you or anyone else is in danger right now, call 911.",
    "If you or anyone else is in danger now, call 911.",
    "If you are in crisis or thinking about harming yourself, call or text {} now.",
    "If you are in crisis or thinking about harming yourself, please call or text {} now;",
    "it is free, confidential and open 24/7.",
    "It is free, confidential and open 24/7.",
    "If you are in crisis or thinking of harming yourself, call or text {}, free 24/7.",
    "We want to make sure you get support.",
    "I want to make sure you get support.",
    "Si usted u otra persona está en peligro en este momento, llame al 911.",
    "Si usted u otra persona corre peligro, llame al 911.",
    "Si está en crisis o piensa en hacerse daño, llame o envíe un mensaje de texto al {} ahora.",
    "Si está en crisis o piensa en hacerse daño, llame o envíe un mensaje de texto al {} ahora;",
    "Si tiene una crisis o piensa en hacerse daño, llame al {} y oprima 2, o mande AYUDA por "
    "texto al {}.",
    "Queremos asegurarnos de que reciba apoyo.",
    "TCC Counseling can also help. Contact a counselor: {}",
    "TCC Counseling can also help: {}",
    "Mental Health First Aid resources: {}",
    "TCC Counseling también puede ayudarle. Comuníquese con un consejero: {}",
    "TCC Counseling también puede ayudarle: {}",
    "Recursos de Mental Health First Aid: {}",
    "Para recibir atención en español, al llamar oprima el 2; por mensaje de texto, envíe la "
    "palabra AYUDA al {}.",
    "Es gratuito, confidencial y atiende las 24 horas, los 7 días de la semana.",
)

_SENTENCE = re.compile(r"[^.!?;]+[.!?;]?")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_GAP = r"[\s>\"'“”«»]+"
"""Between two words of a quoted sentence: spaces, line breaks, quote marks, `>`."""
_FILLED = r"[^\n]{0,160}?"
"""A placeholder's value (a link, a department name, a day and hour)."""


def _pattern(sentence: str) -> str | None:
    """A sentence as a pattern matching it re-wrapped or quoted; None for one too short to be
    told from a patron's own words."""
    words = sentence.split()
    if len(words) < 4:
        return None
    parts = []
    for word in words:
        pieces = _PLACEHOLDER.split(word)
        parts.append(_FILLED.join(re.escape(piece) for piece in pieces))
    return _GAP.join(parts)


def sentences(texts: Iterable[str]) -> list[str]:
    """The sentences of some texts, each once."""
    found: dict[str, None] = {}
    for text in texts:
        for match in _SENTENCE.finditer(text):
            if sentence := match.group().strip():
                found.setdefault(sentence, None)
    return list(found)


def _anchor(sentence: str) -> str:
    """The sentence's longest word outside its placeholders, lower-cased: a message without it
    cannot hold the sentence (a substring test, far cheaper than the pattern)."""
    words: list[str] = re.findall(r"\w+", _PLACEHOLDER.sub(" ", sentence))
    return max(words, key=len).lower()


DISTINCTIVE_WORDS = 7
"""A sentence this long is refdesk's own when quoted ("If you are in danger, call 911." and
the acknowledgement's other sentences); a shorter one ("Thank you for your email.") is
anyone's courtesy: taken out all the same (it says nothing), but never a sign that a machine
wrote the message (a patron in crisis who began "Thank you for your email." had been sent no
crisis resources: an outside review)."""


class OwnWords:
    """Takes refdesk's own sentences out of a message."""

    def __init__(self, texts: Iterable[str]) -> None:
        """Compile the sentences of `texts` and the notifier's, each with its anchor word and
        whether it is distinctive (`DISTINCTIVE_WORDS`)."""
        found = [(s, p) for s in sentences([*texts, *NOTIFIER_SENTENCES]) if (p := _pattern(s))]
        # the longest first, so a sentence is taken whole rather than a shorter one inside it
        found.sort(key=lambda item: len(item[0]), reverse=True)
        self._sentences = [
            (_anchor(s), re.compile(p, re.I), len(s.split()) >= DISTINCTIVE_WORDS) for s, p in found
        ]

    def read(self, text: str) -> tuple[str, bool]:
        """`text` without refdesk's own sentences (the same string when it holds none), and
        whether one of them was distinctive: the message quotes refdesk."""
        low = text.lower()
        stripped, quoted = text, False
        for anchor, pattern, distinctive in self._sentences:
            if anchor in low:
                stripped, n = pattern.subn(" ", stripped)
                quoted = quoted or bool(n and distinctive)
        return (text if stripped == text else stripped), quoted

    def strip(self, text: str) -> str:
        """`text` without refdesk's own sentences (the same string when it holds none)."""
        return self.read(text)[0]
