"""`python -m shared.migrate` (the compose one-shot job) on SQLite: every service's schema at
its head, a database per service or one shared by all, run twice safely, and a failure
reported as exit status 1 with a JSON log line."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from shared import migrate
from shared.db import SERVICES_DIR
from shared.settings import CommonSettings


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """main() configures logging for the whole process: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in ("aiokafka", "uvicorn.access")}
    noisy |= {name: logging.getLogger(name).level for name in ("httpx", "mail.log")}
    noisy["faststream.access"] = logging.getLogger("faststream.access").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in noisy.items():
        logging.getLogger(name).setLevel(was)


def head(service: str) -> str | None:
    """The newest revision a service's migrations folder holds."""
    return ScriptDirectory(str(SERVICES_DIR / service / "migrations")).get_current_head()


def version_in(db: Path, service: str) -> str:
    """The revision a service's version table records in a SQLite file."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT version_num FROM alembic_version_{service}").fetchall()
    assert len(rows) == 1
    return str(rows[0][0])


def logged(err: str) -> list[dict[str, object]]:
    """The JSON log lines written to stderr."""
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_every_service_ships_migrations() -> None:
    """All five services own a schema, migrated in the fixed order."""
    assert migrate.services_with_migrations() == list(migrate.SERVICES)


def test_each_service_gets_its_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`{service}` in the URL: one SQLite file per service, each at its head; a second run
    changes nothing and succeeds too."""
    monkeypatch.setenv("REFDESK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db")
    assert migrate.main() == 0
    for service in migrate.SERVICES:
        assert version_in(tmp_path / f"{service}.db", service) == head(service)
    lines = logged(capsys.readouterr().err)
    done = [e["schema"] for e in lines if e["message"] == "schema migrated"]
    assert done == list(migrate.SERVICES)
    assert {e["service"] for e in lines} == {"migrate"}
    assert migrate.main() == 0
    # each database and the lock file its migrations take (shared.db.migrate)
    expected = [name for s in migrate.SERVICES for name in (f"{s}.db", f"{s}.db.migrate-lock")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)


def test_one_database_can_hold_every_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `{service}` every schema goes to the same database (the names are distinct)."""
    db = tmp_path / "refdesk.db"
    monkeypatch.setenv("REFDESK_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    assert migrate.main() == 0
    for service in migrate.SERVICES:
        assert version_in(db, service) == head(service)


def test_a_failed_migration_exits_1_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database URL no installed driver serves: exit status 1, the error's type in the
    log line, nothing reported migrated."""
    monkeypatch.setenv("REFDESK_DATABASE_URL", "nosuchdb+nodriver://db/{service}")
    assert migrate.main() == 1
    lines = logged(capsys.readouterr().err)
    assert [e["message"] for e in lines if e["logger"] == "shared.migrate"] == ["migration failed"]
    failure = next(e for e in lines if e["message"] == "migration failed")
    assert failure["level"] == "error" and failure["error"] == "NoSuchModuleError"
    assert "nosuchdb.nodriver" in str(failure["detail"])


def test_database_url_per_service(tmp_path: Path) -> None:
    """The configured URL with the service's name, else a SQLite file in the run folder."""
    given = CommonSettings(database_url="postgresql+asyncpg://db/{service}")
    assert migrate.database_url(given, "status") == "postgresql+asyncpg://db/status"
    default = CommonSettings(database_url=None, run_dir=tmp_path)
    url = migrate.database_url(default, "router")
    assert url == f"sqlite+aiosqlite:///{(tmp_path / 'router.db').resolve()}"
