"""Alembic environment for the status service (the connection comes from shared.db.migrate)."""

from services.status.models import Base
from shared.db import run_migrations_online

run_migrations_online(Base.metadata)
