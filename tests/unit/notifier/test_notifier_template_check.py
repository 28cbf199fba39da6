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
    assert found.value.template == "email/crisis_resources.txt.j2"


def test_a_spanish_template_is_checked_too(tmp_path: Path) -> None:
    folder = templates_with(
        tmp_path,
        "sms/handoff.es.txt.j2",
        lambda text: text + "{{ departamento }}",
    )
    with pytest.raises(TemplateInvalid, match="departamento") as found:
        check_templates(messages.load_templates(folder))
    assert found.value.template == "sms/handoff.es.txt.j2"


MISSING = "Still missing (please ask the patron): {{ missing_fields"
BROKEN: list[tuple[str, str, str, str]] = [
    # a branch only some values take: a first circulation email missing the TCC ID
    ("email/circulation_email.txt.j2", MISSING, "{{ missing_feilds", "missing_feilds"),
    (
        "chat/crisis_resources.es.txt.j2",
        "({{ crisis_line_name }})",
        "({{ crisis_line_nmae }})",
        "crisis_line_nmae",
    ),
    ("sms/survey.txt.j2", "{{ survey_url }}", "{{ survey_url | titel }}", "titel"),
    ("sms/survey.txt.j2", "{{ survey_url }}", "{% if 0 %}{% include 'sms/x.j2' %}{% endif %}", "x"),
    ("sms/handoff.txt.j2", "{{ desk_name }}", "{% if topic is odd_number %}{% endif %}", "odd_n"),
]


@pytest.mark.parametrize(("name", "old", "new", "named"), BROKEN)
def test_a_template_is_read_whole_whatever_branch_names_the_mistake(
    tmp_path: Path, name: str, old: str, new: str, named: str
) -> None:
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new)

    folder = templates_with(tmp_path, name, edit)
    with pytest.raises(TemplateInvalid, match=named) as found:
        check_templates(messages.load_templates(folder))
    assert found.value.template == name


def test_a_template_that_fails_as_it_renders_is_refused_by_name(tmp_path: Path) -> None:
    folder = templates_with(
        tmp_path, "sms/handoff.txt.j2", lambda t: t + "{{ department_name + 1 }}"
    )
    with pytest.raises(TemplateInvalid, match="TypeError") as found:
        check_templates(messages.load_templates(folder))
    assert found.value.template == "sms/handoff (en)"


def test_every_language_a_file_exists_for_is_rendered(tmp_path: Path) -> None:
    folder = templates_with(tmp_path, "sms/handoff.txt.j2", lambda t: t)
    (folder / "sms" / "handoff.vi.txt.j2").write_text(
        "{{ desk_name }}: {{ department_name }} {{ department_name | titel }}", encoding="utf-8"
    )
    with pytest.raises(TemplateInvalid, match="titel"):
        check_templates(messages.load_templates(folder))
    (folder / "sms" / "handoff.vi.txt.j2").write_text(
        "{{ desk_name }}: {{ department_name[99] }}", encoding="utf-8"
    )
    with pytest.raises(TemplateInvalid) as found:
        check_templates(messages.load_templates(folder))
    assert found.value.template == "sms/handoff (vi)"


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
