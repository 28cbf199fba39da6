"""The refdesk commands that need no running stack: version, and `policy explain` as a table
(with the fields staff must still ask for) or as an error naming the option."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from refdesk_cli.main import app

runner = CliRunner()


def cells_of(output: str) -> list[list[str]]:
    """The body rows of rich tables, as stripped cells."""
    return [
        [c.strip() for c in line.split("│")[1:-1]] for line in output.splitlines() if "│" in line
    ]


def table_rows(output: str) -> dict[str, str]:
    """field -> value of a two-column rich table (the first line of a wrapped value)."""
    rows: dict[str, str] = {}
    for cells in cells_of(output):
        if len(cells) == 2 and cells[0] and cells[0] not in rows:
            rows[cells[0]] = cells[1]
    return rows


def test_version_is_the_installed_distributions() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == version("refdesk")


def test_policy_explain_prints_the_decision_and_what_is_missing() -> None:
    """A lost book without TCC ID or title: the circulation managers, the rule and the words
    that fired, and the fields staff must still ask for."""
    result = runner.invoke(
        app,
        [
            "policy",
            "explain",
            "I lost a library book, I'm Ana Gomez",
            "--at",
            "2026-01-06T10:00",
            "--rules-only",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows["action"] == "email_circulation"
    assert rows["department"] == "circulation-managers"
    assert rows["rules"].startswith("circulation-managers (lost a library book)")
    assert rows["missing"] == "tcc_id, item"
    assert rows["model_version"] == "None" and rows["net"] == "None"
    assert rows["hand-off"].startswith("Lost or damaged items")


def test_policy_explain_names_the_option_it_refuses() -> None:
    result = runner.invoke(app, ["policy", "explain", "hi", "--channel", "fax"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --channel: Input should be 'chat', 'sms' or 'email'"
    assert result.stdout == ""
