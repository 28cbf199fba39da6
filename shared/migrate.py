"""`python -m shared.migrate`: upgrade every service's schema (the compose one-shot job).

Reads REFDESK_DATABASE_URL (and the other common settings) and runs each service's Alembic
migrations in turn; a service without a migrations folder is skipped. A `{service}` in the URL
is replaced by the service's name, so each service can keep its own database (each service
owns its schema; table names are distinct, so one shared database works too).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys

from shared.db import SERVICES_DIR, create_engine, migrate
from shared.logs import configure_logging
from shared.service import start
from shared.settings import CommonSettings

SERVICES = ("ingest", "router", "notifier", "status", "publisher")

log = logging.getLogger(__name__)


def services_with_migrations() -> list[str]:
    """The services, in order, that ship an Alembic migrations folder."""
    return [name for name in SERVICES if (SERVICES_DIR / name / "migrations" / "env.py").exists()]


def database_url(settings: CommonSettings, service: str) -> str:
    """The URL a service's schema lives at ({service} in REFDESK_DATABASE_URL is substituted)."""
    if settings.database_url:
        return settings.database_url.replace("{service}", service)
    return settings.db_url(service)


async def migrate_all(settings: CommonSettings) -> list[str]:
    """Upgrade each service's schema to head; returns the services migrated."""
    done: list[str] = []
    for name in services_with_migrations():
        engine = create_engine(database_url(settings, name))
        try:
            await migrate(engine, name)
        finally:
            await engine.dispose()
        log.info("schema migrated", extra={"schema": name})
        done.append(name)
    return done


_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def without_passwords(text: str) -> str:
    """The text with the password of any URL in it masked (a driver's error may quote it)."""
    return _PASSWORD.sub(r"\1***@", text)


def main() -> int:
    """Migrate every schema; exit status 0 on success."""
    settings = CommonSettings()
    configure_logging("migrate", settings.log_level)
    try:
        asyncio.run(migrate_all(settings))
    except Exception as exc:
        detail = without_passwords(str(exc))[:300]
        log.error("migration failed", extra={"error": type(exc).__name__, "detail": detail})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(start("migrate", main, CommonSettings))
