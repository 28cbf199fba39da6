"""Write the README's configuration tables from the settings classes (`--check` only compares)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    """Each service's settings class, in README order."""
    from services.ingest.settings import IngestSettings
    from services.notifier.settings import NotifierSettings
    from services.publisher.settings import PublisherSettings
    from services.router.settings import RouterSettings
    from services.status.settings import StatusSettings
    from shared.settings import CommonSettings

    return [
        ("Common (every service)", CommonSettings),
        ("ingest", IngestSettings),
        ("router", RouterSettings),
        ("notifier", NotifierSettings),
        ("status", StatusSettings),
        ("publisher", PublisherSettings),
    ]


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable a settings field is read from."""
    alias: Any = field.validation_alias
    if isinstance(alias, str):
        return alias
    if alias is not None and hasattr(alias, "choices"):
        return str(alias.choices[0])
    return f"REFDESK_{name.upper()}"


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):  # a public development value, refused in production
        value = value.get_secret_value()
    if isinstance(value, Path) and value.is_absolute():
        value = value.relative_to(README.parent)
    return f"`{value}`"


def render() -> str:
    """The tables, one per service."""
    from shared.settings import CommonSettings

    parts = []
    for title, cls in settings_classes():
        rows = [
            f"| `{env_name(n, f)}` | {_default(f)} | {(f.description or '').replace('|', '/')} |"
            for n, f in cls.model_fields.items()
            if cls is CommonSettings or n not in CommonSettings.model_fields
        ]
        parts.append(
            f"#### {title}\n\n| variable | default | meaning |\n|---|---|---|\n" + "\n".join(rows)
        )
    return "\n\n".join(parts)


VARIABLES = README.parent / "shared" / "variables.py"
V_BEGIN, V_END = "# variables:begin", "# variables:end"


def variables() -> str:
    """The generated block of shared/variables.py: every variable the settings read."""
    names = sorted(
        {env_name(n, f) for _, cls in settings_classes() for n, f in cls.model_fields.items()}
    )
    listed = "".join(f'        "{n}",\n' for n in names)
    return f"SETTINGS = frozenset(\n    {{\n{listed}    }}\n)"


def _rewritten(path: Path, begin: str, end: str, block: str) -> tuple[str, str]:
    text = path.read_text()
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return text, f"{head}{begin}\n{block}\n{end}{tail}"


def main() -> int:
    """Rewrite (or with --check, verify) the blocks between the markers: the README's tables
    and shared/variables.py's list."""
    stale = 0
    for path, begin, end, block in (
        (README, BEGIN, END, render()),
        (VARIABLES, V_BEGIN, V_END, variables()),
    ):
        text, new = _rewritten(path, begin, end, block)
        if "--check" in sys.argv:
            stale += new != text
        else:
            path.write_text(new)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
