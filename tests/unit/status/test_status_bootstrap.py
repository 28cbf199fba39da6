"""The staff roster at start (an outside probe, finding 1): production never loads the shipped
development roster, only a file the operator names; a named file that is missing or invalid
stops the start, naming REFDESK_STATUS_SEED_FILE, in every environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

import services.status.app as status_app
from services.status.models import Staff, StaffToken
from services.status.settings import DEFAULT_SEED, StatusSettings
from services.status.staff import RosterError, read_roster
from shared.db import create_engine, session_factory

SECRET = "a-production-session-secret-0123456789"
ROSTER = """\
staff:
  - id: ehart
    name: Eve Hart
    email: eve.hart@tccd.edu
    departments: [reference]
    role: admin
    dev_token: a-token-written-in-a-file
"""


class Stopped(Exception):
    """Raised where start-up would reach the broker: the roster is loaded by then."""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("REFDESK_ENV", "REFDESK_STATUS_SEED_FILE", "REFDESK_STATUS_SESSION_SECRET"):
        monkeypatch.delenv(key, raising=False)
    yield


def production(**kwargs: object) -> StatusSettings:
    return StatusSettings(env="production", session_secret=SECRET, **kwargs)  # type: ignore[arg-type]


def test_development_loads_the_shipped_roster_by_default(clean_env: None) -> None:
    assert StatusSettings().seed_file == DEFAULT_SEED


def test_production_loads_no_roster_unless_one_is_named(clean_env: None, tmp_path: Path) -> None:
    assert production().seed_file is None
    mine = tmp_path / "staff.yaml"
    assert production(seed_file=mine).seed_file == mine


def test_production_refuses_the_shipped_roster_when_it_is_named(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="REFDESK_STATUS_SEED_FILE"):
        production(seed_file=DEFAULT_SEED)
    monkeypatch.setenv("REFDESK_ENV", "production")
    monkeypatch.setenv("REFDESK_STATUS_SESSION_SECRET", SECRET)
    monkeypatch.setenv("REFDESK_STATUS_SEED_FILE", str(DEFAULT_SEED))
    with pytest.raises(ValidationError, match="shipped development roster"):
        StatusSettings()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such file"),
        ("staff: [{id: x}]", "not a valid roster"),
        ("staff: [{id: ab, name: A B, email: a@b.edu, departments: [refrence]}]", "refrence"),
        ("staff: {id: ab}", "not a valid roster"),
    ],
)
def test_a_named_roster_that_cannot_be_loaded_names_the_variable(
    tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "staff.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RosterError, match="REFDESK_STATUS_SEED_FILE") as raised:
        read_roster(path, departments={"reference"})
    assert says in str(raised.value)


async def started(settings: StatusSettings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the status service's start-up up to the broker; the staff ids and token labels it
    left in the database."""

    async def no_broker(*_: object, **__: object) -> None:
        raise Stopped

    monkeypatch.setattr(status_app, "ensure_topics_when_reachable", no_broker)
    with pytest.raises(Stopped):
        await status_app.start_resources(settings)
    engine = create_engine(settings.db_url("status"))
    try:
        async with session_factory(engine)() as session:
            staff = (await session.execute(select(Staff.id).order_by(Staff.id))).scalars()
            tokens = (await session.execute(select(StaffToken.staff_id))).scalars()
            return [*staff, *(f"token:{t}" for t in tokens)]
    finally:
        await engine.dispose()


async def test_production_start_loads_no_demo_staff(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await started(production(run_dir=tmp_path), monkeypatch) == []


async def test_production_start_loads_the_named_roster_without_its_tokens(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roster = tmp_path / "staff.yaml"
    roster.write_text(ROSTER)
    found = await started(production(run_dir=tmp_path, seed_file=roster), monkeypatch)
    assert found == ["ehart"]


async def test_development_start_loads_the_shipped_roster_with_its_tokens(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = await started(StatusSettings(run_dir=tmp_path), monkeypatch)
    assert {"dkim", "mgarcia", "token:dkim"} <= set(found)


@pytest.mark.parametrize("env", ["development", "production"])
async def test_a_named_roster_that_does_not_exist_stops_the_start(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    missing = tmp_path / "nowhere.yaml"
    settings = StatusSettings(
        env=env,
        session_secret=SECRET,
        run_dir=tmp_path,
        seed_file=missing,
    )
    monkeypatch.setattr(status_app, "ensure_topics_when_reachable", None)  # never reached
    with pytest.raises(RosterError, match=f"REFDESK_STATUS_SEED_FILE: no such file: {missing}"):
        await status_app.start_resources(settings)
