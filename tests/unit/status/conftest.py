"""Fixtures for the status service's unit and DB tests: databases, a fake publisher, a clock."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, Clock, FakePublisher

from services.status.app import create_app
from services.status.models import Base
from services.status.resources import Resources
from services.status.settings import StatusSettings
from services.status.staff import read_seed, seed_staff
from shared.db import create_engine, migrate, session_factory

PG_URL = os.environ.get("REFDESK_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("REFDESK_TEST_POSTGRES_URL is not set")
        return PG_URL
    return f"sqlite+aiosqlite:///{tmp_path / 'status.db'}"


async def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.execute(text("DROP TABLE IF EXISTS alembic_version_status"))
    await engine.dispose()


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A freshly migrated database with the seed staff."""
    if db_url.startswith("postgresql"):
        await _reset_postgres(db_url)
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
