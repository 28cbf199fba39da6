"""The delivery side's units of ledger work, and the outcomes written together.

Each unit is one transaction on the ledger's runner (`shared.syncdb.UnitRunner`). The flags
that say an outcome's announcement was taken by the broker (outcomes.py) are not written by a
transaction of their own: they ride on the next unit, whatever it is (a lane claims at least
every poll interval, well inside the lease), and wait for the one after if it fails.

The outcomes of concurrent deliveries are written together (group commit,
`shared.batching.Batcher`), so the crash window (relay accepted, ledger not yet written) is up
to the lane concurrency per lane. A write that meets a lost database connection (a restart or
failover of PostgreSQL) is tried again on a new one, up to OUTCOME_WRITE_TRIES times, so such
an event does not open that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from services.notifier import ledger_outcomes, outbox
from shared.batching import Batcher
from shared.syncdb import UnitRunner

log = logging.getLogger(__name__)

OUTCOME_WRITE_TRIES = 3
"""Tries at writing a batch of outcomes whose database connection was lost, a short pause apart:
each delivery in it was sent, and one not recorded is sent again once its lease runs out."""
OUTCOME_RETRY_PAUSE_S = 0.2
T = TypeVar("T")


@dataclass
class LedgerWork:
    """Runs the hot ledger operations, each as one transaction, and writes outcomes in groups."""

    db: UnitRunner
    now: Callable[[], datetime]
    """Now, aware, in UTC (the Deliverer's clock)."""
    lease_s: float
    _outcomes: Batcher[ledger_outcomes.Outcome, None] = field(init=False)
    _marks: list[str] = field(init=False, default_factory=list)
    """Outcomes the broker took whose flag is not yet written: the next unit of work writes
    it."""

    def __post_init__(self) -> None:
        self._outcomes = Batcher(self._write_outcomes)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run one unit of ledger work, writing the announced flags waiting for one in the
        same transaction (they wait again if it fails)."""
        marks, self._marks = self._marks, []

        def unit(conn: Connection) -> T:
            outbox.mark_announced(conn, marks)
            return fn(conn)

        try:
            return await self.db(unit)
        except BaseException:
            self._marks[:0] = marks
            raise

    def announced(self, keys: Iterable[str]) -> None:
        """The broker took these outcomes' announcements: the next unit records it."""
        self._marks += keys

    async def submit(self, outcome: ledger_outcomes.Outcome) -> None:
        """Write one delivery's outcome, with those of the deliveries finishing meanwhile."""
        await self._outcomes.submit(outcome)

    async def _write_outcomes(self, outcomes: list[ledger_outcomes.Outcome]) -> list[None]:
        write = functools.partial(
            ledger_outcomes.apply_outcomes, outcomes=outcomes, lease_s=self.lease_s, now=self.now()
        )
        for tried in range(1, OUTCOME_WRITE_TRIES + 1):
            try:
                await self.run(write)
                break
            except DBAPIError as exc:
                if not exc.connection_invalidated or tried == OUTCOME_WRITE_TRIES:
                    raise
                log.warning(
                    "the ledger's connection was lost writing outcomes; trying again",
                    extra={"outcomes": len(outcomes), "tried": tried},
                )
                await asyncio.sleep(OUTCOME_RETRY_PAUSE_S * tried)
        return [None] * len(outcomes)

    async def close(self) -> None:
        """Release the outcome writer and the ledger's connection, after writing the announced
        flags still waiting."""
        await self._outcomes.close()
        if self._marks:
            with contextlib.suppress(Exception):  # announced again after the lease: dropped
                await self.run(lambda conn: None)
        self.db.close()
