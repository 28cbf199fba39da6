"""Alembic environment of the notifier's schema."""

from services.notifier.tables import metadata
from shared.db import run_migrations_online

run_migrations_online(metadata)
