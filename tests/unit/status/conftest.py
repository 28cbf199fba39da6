"""Fixtures for the status service's unit and DB tests: databases, a fake publisher, a clock."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, Clock, FakePublisher

from services.status.app import create_app
from services.status.resources import Resources
from services.status.settings import StatusSettings
from services.status.staff import read_seed, seed_staff
from shared.db import create_engine, migrate, session_factory
from tests.conftest import _fresh_postgres as fresh_postgres

PG_URL = os.environ.get("REFDESK_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database per test (a throwaway PostgreSQL database: tests may run in parallel)."""
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("REFDESK_TEST_POSTGRES_URL is not set")
        yield from fresh_postgres(PG_URL)
        return
    yield f"sqlite+aiosqlite:///{tmp_path / 'status.db'}"


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A freshly migrated database with the seed staff."""
    engine = create_engine(db_url)
    await migrate(engine, "status")
    factory = session_factory(engine)
    async with factory() as session:
        await seed_staff(
            session=session,
            entries=read_seed(StatusSettings().seed_file),  # type: ignore[arg-type]
            with_tokens=True,
            now=T0,
        )
        await session.commit()
    yield factory
    await engine.dispose()


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def settings() -> StatusSettings:
    return StatusSettings(env="development", auto_assign=False)


@pytest.fixture
async def resources(
    settings: StatusSettings,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
) -> Resources:
    return Resources(settings=settings, sessions=sessions, publisher=publisher, clock=clock)


@pytest.fixture
async def client(resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI, with the lifespan skipped and test resources injected."""
    app = create_app(resources.settings)
    app.state.resources = resources
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as c:
        yield c
