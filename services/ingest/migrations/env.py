"""Alembic environment of the ingest schema."""

from services.ingest.tables import metadata
from shared.db import run_migrations_online

run_migrations_online(metadata)
