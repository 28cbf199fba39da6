"""`python -m services.publisher.schemas DIR` regenerates docs/schemas: the files it writes are
the committed ones, byte for byte, and it prints each path."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from services.publisher.schemas import SCHEMA_DIR, write
from shared.events import PUBLIC_EVENT_TYPES


def test_write_reproduces_the_committed_files(tmp_path: Path) -> None:
    """One file per public event type, in type order, equal to the committed file."""
    folder = tmp_path / "new" / "schemas"
    written = write(folder)
    assert [p.name for p in written] == [f"{t}.json" for t in sorted(PUBLIC_EVENT_TYPES)]
    for path in written:
        assert path.read_bytes() == (SCHEMA_DIR / path.name).read_bytes(), path.name


def test_the_module_writes_to_the_folder_given_and_prints_the_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["schemas", str(tmp_path)])
    monkeypatch.delitem(sys.modules, "services.publisher.schemas")  # run as a fresh __main__
    runpy.run_module("services.publisher.schemas", run_name="__main__")
    printed = capsys.readouterr().out.splitlines()
    assert printed == [str(tmp_path / f"{t}.json") for t in sorted(PUBLIC_EVENT_TYPES)]
    assert all(Path(p).is_file() for p in printed)
