"""Ingest's message store failing: what counts as it, and the exception the routes answer 503."""

from __future__ import annotations

from types import TracebackType

import asyncpg
from sqlalchemy.exc import DBAPIError, PendingRollbackError, ResourceClosedError
from sqlalchemy.exc import TimeoutError as PoolTimeout

STORE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,  # OperationalError, InterfaceError, ... from any driver, wrapped by SQLAlchemy
    PoolTimeout,  # no connection could be checked out of the pool in time
    ResourceClosedError,  # a connection the database ended, met before it was replaced
    PendingRollbackError,  # a connection that died mid-transaction, met likewise
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
)
"""The database's errors, whichever driver raised them."""
STORE_MODULES = (
    "sqlalchemy.",
    "asyncpg.",
    "psycopg.",
    "aiosqlite.",
    "shared.db",
    "shared.syncdb",
    "services.ingest.store",
)
"""Where an OSError is the database's: a driver connecting (refused, unknown host, timed out)
raises it unwrapped."""


class StoreUnavailable(Exception):
    """The message store could not be read or written: answer 503 so the provider retries.

    Carries only the error's type: a driver's message can quote SQL parameters (patron data).
    """

    def __init__(self, error: str) -> None:
        """Keep the original error's type name, for the log."""
        super().__init__(error)
        self.error = error


def store_failure(exc: BaseException) -> bool:
    """Whether `exc` is the database failing (a driver error, or an OSError raised within the
    database's code); a broker's timeout or a full disk elsewhere is not."""
    if isinstance(exc, (StoreUnavailable, *STORE_ERRORS)):
        return True
    return isinstance(exc, OSError) and _raised_within(exc.__traceback__, STORE_MODULES)


def _raised_within(tb: TracebackType | None, modules: tuple[str, ...]) -> bool:
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        if name.startswith(modules):
            return True
        tb = tb.tb_next
    return False
