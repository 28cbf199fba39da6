"""The README's configuration tables are generated from the settings classes and must match."""

from __future__ import annotations

from tools.settings_table import BEGIN, END, README, render


def test_readme_configuration_tables_match_the_code() -> None:
    text = README.read_text()
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == render().strip(), "run: .venv/bin/python -m tools.settings_table"


def test_every_setting_is_described() -> None:
    undocumented = [
        line for line in render().splitlines() if line.startswith("| `") and line.endswith("|  |")
    ]
    assert undocumented == []
