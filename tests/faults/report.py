"""The fault table: every scenario adds a row; the session prints it and, after a full run,
writes it into docs/reliability.md between the faults markers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"
ROWS: list[dict[str, Any]] = []
FULL_RUN: list[bool] = []
"""Set by a scenario of the full suite: only a full run rewrites the document's table."""


def add(row: dict[str, Any], *, full: bool) -> None:
    ROWS.append(row)
    if full:
        FULL_RUN.append(True)


def table() -> str:
    lines = ["| fault | sent | received | lost | duplicated |", "|---|---:|---:|---:|---:|"]
    lines += [
        f"| {r['fault']} | {r['sent']} | {r['received']} | {r['lost']} | {r['duplicated']} |"
        for r in ROWS
    ]
    return "\n".join(lines)


def write_doc() -> None:
    """Replace the table between the markers in docs/reliability.md."""
    if not DOC.exists():
        return
    text = DOC.read_text()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{BEGIN}\nLast full run: {stamp}.\n\n{table()}\n{END}"
    DOC.write_text(
        re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, text, flags=re.S)
    )
