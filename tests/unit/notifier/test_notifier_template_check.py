"""The notifier checks its templates before it starts: a template that does not compile, or
that names a variable no context has (even inside an `{% if %}` a message rarely takes), stops
the start with exit 2 and the template's name, instead of the notifier reporting ready and
giving up for good on every message that uses it (a CARE Team alert among them)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from jinja2 import Environment

from services.notifier import app, messages
from services.notifier.errors import TemplateInvalid
from services.notifier.template_check import check_templates


def templates_with(tmp_path: Path, name: str, edit: Callable[[str], str]) -> Path:
    """A copy of the packaged templates with one file edited."""
    folder = tmp_path / "templates"
    shutil.copytree(messages.TEMPLATES_DIR, folder)
    path = folder / name
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def test_the_packaged_templates_pass() -> None:
    # every kind with a template, on each channel, in English and Spanish, twice each
    assert check_templates() >= 60


def test_a_misspelt_variable_inside_a_condition_is_found(tmp_path: Path) -> None:
    folder = templates_with(
        tmp_path,
        "email/crisis_resources.txt.j2",
        lambda text: text.replace("{{ mhfa_url }}", "{{ mhfa_link }}"),
    )
    with pytest.raises(TemplateInvalid, match="mhfa_link") as found:
        check_templates(messages.load_templates(folder))
    assert found.value.template == "email/crisis_resources (en)"


def test_a_spanish_template_is_checked_too(tmp_path: Path) -> None:
    folder = templates_with(
        tmp_path,
        "sms/handoff.es.txt.j2",
        lambda text: text + "{{ departamento }}",
    )
    with pytest.raises(TemplateInvalid, match="departamento") as found:
        check_templates(messages.load_templates(folder))
    assert found.value.template == "sms/handoff (es)"


def broken_survey(tmp_path: Path) -> Path:
    return templates_with(
        tmp_path,
        "sms/survey.txt.j2",
        lambda text: text.replace("{{ survey_url }}", "{{ survey_url }"),
    )


def test_the_notifier_refuses_to_start_on_a_broken_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = broken_survey(tmp_path)

    def load() -> Environment:
        return messages.load_templates(folder)

    monkeypatch.setattr(messages, "default_templates", load)
    served: list[object] = []
    monkeypatch.setattr(app, "serve", lambda *args, **kw: served.append(args))
    with pytest.raises(SystemExit) as stopped:
        app.main()
    assert stopped.value.code == 2 and served == []
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if "template" in x]
    assert line["level"] == "error" and line["template"] == "sms/survey.txt.j2"
    assert "unexpected '}'" in line["error"]
