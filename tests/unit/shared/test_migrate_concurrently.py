"""Replicas that start together on a fresh database migrate it one at a time: without that,
both create a service's version table and the second fails to start."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect

from shared.db import create_engine, migrate
from shared.migrate import services_with_migrations


@pytest.mark.parametrize("service", services_with_migrations())
async def test_replicas_migrating_a_fresh_database_at_once_all_succeed(
    database_url: str, service: str
) -> None:
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        outcomes = await asyncio.gather(
            *(migrate(engine, service) for engine in engines), return_exceptions=True
        )
        assert [o for o in outcomes if o is not None] == []
        async with engines[0].connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert f"alembic_version_{service}" in tables
    finally:
        for engine in engines:
            await engine.dispose()
