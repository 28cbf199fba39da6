"""check-policy: broken files are refused with the YAML line named (the shipped file through
the real command line, the broken variants in process)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from services.router.cli import check_policy
from services.router.policy import PolicyError, default_policy_path, load_policy, parse_policy

ROOT = Path(__file__).parents[3]

TUTORING_RULE = """  - id: tutoring
    action: transfer
    department: tutoring
"""


def line_of(text: str, needle: str) -> int:
    """1-based line where `needle` starts in `text`."""
    return text[: text.index(needle)].count("\n") + 1


def cli(path: Path) -> subprocess.CompletedProcess[str]:
    """Run python -m services.router check-policy FILE (the real command line)."""
    return subprocess.run(
        [sys.executable, "-m", "services.router", "check-policy", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def check(path: Path) -> subprocess.CompletedProcess[str]:
    """check-policy FILE in this process: what the command prints and returns, without a
    Python start per case (test_shipped_policy_passes runs the real command line)."""
    out, err = io.StringIO(), io.StringIO()
    code = check_policy(path, out, err)
    return subprocess.CompletedProcess(
        ["check-policy", str(path)], code, out.getvalue(), err.getvalue()
    )


def write(tmp_path: Path, text: str) -> Path:
    """Write a policy variant to a temporary file."""
    path = tmp_path / "policy.yaml"
    path.write_text(text, "utf-8")
    return path


def test_shipped_policy_passes() -> None:
    """The shipped policy validates and its examples pass."""
    result = cli(default_policy_path())
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_unknown_department(tmp_path: Path, policy_text: str) -> None:
    """A rule naming a department that does not exist is refused at its line."""
    bad = policy_text.replace(
        TUTORING_RULE, TUTORING_RULE.replace("department: tutoring", "department: tutorng")
    )
    line = line_of(bad, "department: tutorng")
    result = check(write(tmp_path, bad))
    assert result.returncode == 1
    assert f":{line}:" in result.stderr and "unknown department 'tutorng'" in result.stderr


def test_bad_regex(tmp_path: Path, policy_text: str) -> None:
    """A pattern that does not compile is refused at its line."""
    good = r"'\bextend (?:my|the) (?:loan|due|checkout)\b'"
    bad = policy_text.replace(good, r"'\bextend (?:my|the (?:loan'")
    line = line_of(bad, r"'\bextend (?:my|the (?:loan'")
    result = check(write(tmp_path, bad))
    assert result.returncode == 1
    assert f":{line}:" in result.stderr and "bad regex" in result.stderr


def test_duplicate_rule_is_unreachable(tmp_path: Path, policy_text: str) -> None:
    """A copy of a rule under another id can never fire and is refused at its line."""
    start = policy_text.index(TUTORING_RULE)
    end = policy_text.index("  # ---- another campus")
    copy = policy_text[start:end].replace("- id: tutoring", "- id: tutoring-again")
    bad = policy_text[:end] + copy + policy_text[end:]
    line = line_of(bad, "- id: tutoring-again")
    result = check(write(tmp_path, bad))
    assert result.returncode == 1
    assert f":{line}:" in result.stderr and "'tutoring-again' is unreachable" in result.stderr


def test_rule_after_catch_all_is_unreachable(tmp_path: Path, policy_text: str) -> None:
    """A rule after the unconditional catch-all is refused at its line."""
    anchor = "    department: reference\n\nextract:"
    extra = (
        "    department: reference\n  - id: too-late\n    action: transfer\n"
        "    department: tutoring\n    conditions: {any_of: {phrases: [tutor]}}\n\nextract:"
    )
    bad = policy_text.replace(anchor, extra)
    line = line_of(bad, "- id: too-late")
    result = check(write(tmp_path, bad))
    assert result.returncode == 1
    assert f":{line}:" in result.stderr and "'too-late' is unreachable" in result.stderr


def test_schema_error(tmp_path: Path, policy_text: str) -> None:
    """A wrong department kind is a schema error at its line."""
    bad = policy_text.replace(
        "    kind: referral\n    contact: counseling@", "    kind: lively\n    contact: counseling@"
    )
    line = line_of(bad, "kind: lively")
    result = check(write(tmp_path, bad))
    assert result.returncode == 1
    assert f":{line}:" in result.stderr and "kind" in result.stderr


def test_yaml_syntax_error(tmp_path: Path, policy_text: str) -> None:
    """Broken YAML names its line too."""
    bad = policy_text.replace('label: "2025-fall-1"', "label: [unclosed")
    result = check(write(tmp_path, bad))
    assert result.returncode == 1 and "YAML error" in result.stderr


def test_failing_example(tmp_path: Path, policy_text: str) -> None:
    """An example that routes differently from its expectation fails the check."""
    needle = (
        '{channel: chat, text: "How do I cite a website in MLA?", '
        "expect: {action: transfer, department: writing-center}}"
    )
    bad = policy_text.replace(needle, needle.replace("writing-center", "tutoring"))
    result = check(write(tmp_path, bad))
    assert result.returncode == 1
    assert f"line {line_of(bad, needle.replace('writing-center', 'tutoring'))}" in result.stderr
    assert "expected transfer/tutoring" in result.stderr


def test_sms_too_long_is_refused(tmp_path: Path, policy_text: str) -> None:
    """An SMS hand-off that does not fit one GSM-7 segment is refused in-process too."""
    needle = 'sms: "A librarian will reply to you here."'
    bad = policy_text.replace(needle, 'sms: "' + "x" * 161 + '"')
    with pytest.raises(PolicyError) as err:
        load_policy(write(tmp_path, bad))
    assert err.value.line == line_of(bad, 'sms: "xxx')
    assert "161 GSM-7" in str(err.value)


def test_translated_sms_keyword_must_be_gsm7(policy_text: str) -> None:
    """A Spanish keyword reply is sent by SMS as written: an accent outside GSM-7 is refused."""
    broken = policy_text.replace("escribirnos en cualquier", "escribirnos el sábado o en cualquier")
    assert broken != policy_text
    with pytest.raises(PolicyError, match="outside GSM-7"):
        parse_policy(broken.encode())


def test_translation_must_cover_every_department(policy_text: str) -> None:
    """A department without its Spanish hand-off is named by the check."""
    broken = policy_text.replace(
        '      tutoring:\n        chat: "Alguien de Tutoring',
        '      tutorias:\n        chat: "Alguien de Tutoring',
    )
    assert broken != policy_text
    with pytest.raises(PolicyError, match="tutoring"):
        parse_policy(broken.encode())
