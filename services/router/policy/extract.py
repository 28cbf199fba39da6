"""Pull the details circulation managers need (name, TCC ID, item) out of a message."""

from __future__ import annotations

import re

from .model import Extraction

FIELDS = ("patron_name", "tcc_id", "item")


class Extractor:
    """Per field, an ordered list of policy regexes with a `value` group; first match wins."""

    def __init__(self, spec: Extraction) -> None:
        """Compile the policy's extraction patterns (already validated by the loader)."""
        self._fields = {f: [re.compile(p) for p in getattr(spec, f)] for f in FIELDS}

    def extract(self, text: str) -> dict[str, str]:
        """The fields found in the original (not normalised) text."""
        found: dict[str, str] = {}
        for field, patterns in self._fields.items():
            for pattern in patterns:
                m = pattern.search(text)
                if m and m.group("value") and m.group("value").strip():
                    found[field] = " ".join(m.group("value").split()).strip(" '\"")
                    break
        return found

    @staticmethod
    def missing(found: dict[str, str]) -> list[str]:
        """The fields still to ask the patron for, in the managers' order."""
        return [f for f in FIELDS if f not in found]
