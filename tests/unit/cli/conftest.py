"""The refdesk command line's tests: `refdesk policy explain` loads the shipped policy and
model on every call (about a second together); here each file is loaded once per worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import services.router.learned as learned
import services.router.policy as policy


def _once(load: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """`load`, remembered by the file's path, size and modification time (a test that writes
    a file gets its own load; a file that fails to load is not remembered)."""
    seen: dict[tuple[Path, int, int], Any] = {}

    def cached(path: Path) -> Any:
        try:
            stat = Path(path).stat()
        except OSError:
            return load(path)  # the loader's own error
        key = (Path(path).resolve(), stat.st_size, stat.st_mtime_ns)
        if key not in seen:
            seen[key] = load(path)
        return seen[key]

    return cached


_POLICY, _MODEL = _once(policy.load_policy), _once(learned.load_model)


@pytest.fixture(autouse=True)
def _load_each_file_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(policy, "load_policy", _POLICY)
    monkeypatch.setattr(learned, "load_model", _MODEL)
    yield
