"""Alembic environment of the router's schema."""

from services.router.tables import metadata
from shared.db import run_migrations_online

run_migrations_online(metadata)
