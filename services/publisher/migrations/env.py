"""Alembic environment for the publisher service (the connection comes from shared.db.migrate)."""

from services.publisher.tables import Base
from shared.db import run_migrations_online

run_migrations_online(Base.metadata)
