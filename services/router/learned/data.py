"""The labelled messages the model learns from and is measured on, and the split by author."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from services.router.policy.decision import DecisionInput
from services.router.policy.report import OPEN_TIME
from shared.events import Channel, PatronRole

ROOT = Path(__file__).parents[3]
CORPUS = sorted((ROOT / "services/router/data").glob("corpus_*.jsonl"))
"""The corpus, one file per author (services/router/data/corpus_<author>.jsonl)."""
PROJECT = sorted((ROOT / "tests/unit/router/data").glob("*.jsonl"))
"""The project's earlier labelled sets: always in training, never a test split."""
PROJECT_AUTHOR = "project"


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled message."""

    channel: Channel
    text: str
    subject: str | None
    role: PatronRole
    lang: str
    """"en" or "es" (the corpus' "mixed" Spanish-English counts as Spanish)"""
    author: str
    tag: str | None
    label: str
    """"action/department\""""

    def as_input(self) -> DecisionInput:
        """The message as the router receives it, at a time the desk is open."""
        return DecisionInput(
            channel=self.channel,
            text=self.text,
            received_at=OPEN_TIME,
            patron_role=self.role,
            subject=self.subject,
        )


def read(path: Path, author: str | None = None) -> list[Example]:
    """The examples of one JSON-lines file; `author` for files whose rows do not name one."""
    out: list[Example] = []
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        want = row["expect"]
        out.append(
            Example(
                channel=Channel(row["channel"]),
                text=row["text"],
                subject=row.get("subject"),
                role=PatronRole(row.get("patron_role") or "unknown"),
                lang="en" if row.get("lang", "en") == "en" else "es",
                author=str(row.get("author") or author),
                tag=row.get("tag"),
                label=f"{want['action']}/{want['department']}",
            )
        )
    return out


def load_all(corpus: list[Path] | None = None, project: list[Path] | None = None) -> list[Example]:
    """The project's sets (author "project") followed by the corpus files."""
    rows: list[Example] = []
    for path in PROJECT if project is None else project:
        rows += read(path, PROJECT_AUTHOR)
    for path in CORPUS if corpus is None else corpus:
        rows += read(path, path.stem.removeprefix("corpus_"))
    return rows


def authors(rows: list[Example]) -> list[str]:
    """The corpus authors, each one test fold (the project's sets are never held out)."""
    return sorted({r.author for r in rows} - {PROJECT_AUTHOR})
