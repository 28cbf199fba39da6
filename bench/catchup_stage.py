"""Catch-up: the router is down while interactions arrive at 20/s; after its restart, how long
until the backlog is decided and every email is at the sink, and whether any came twice.

The other services keep running, so the webhooks are accepted and wait in
refdesk.interactions; the clock starts when the router process is started again (its start-up
counts) and stops when the last of the backlog's emails arrives.
"""

from __future__ import annotations

import collections
import logging
import time
from pathlib import Path
from typing import Any

from bench.drive import OK, loadgen
from bench.e2e_stage import mail_tccs, mail_times
from bench.system import System
from refdesk_cli.stack import Stack

log = logging.getLogger("bench")
RATE = 20.0
TCC_BASE = 4_000_000


def run(root: Path, system: System, stack: Stack, *, quick: bool) -> dict[str, Any]:
    """Stop the router, offer RATE/s for the outage, restart it and time the drain."""
    outage_s = 60.0 if quick else 600.0
    stack.stop("router")
    spec = {
        "port": stack.ports["ingest"],
        "mode": "open",
        "rate": RATE,
        "duration": outage_s,
        "kind": "lostbook",
        "tag": 0xC0C,
        "tcc_base": TCC_BASE,
        "phone_base": "+1817555",
    }
    log.info("  router stopped; %.0f interactions/s for %.0f s", RATE, outage_s)
    res = loadgen(root, spec)
    accepted = sum(1 for code in res["status"] if code in OK)
    backlog = len(res["sched"])
    restarted = time.monotonic()
    stack.start("router")
    deadline = restarted + (120.0 if quick else 600.0)
    mails: dict[int, float] = {}
    while time.monotonic() < deadline:
        mails = mail_times(system)
        if all(TCC_BASE + i in mails for i in range(backlog)):
            break
        time.sleep(0.5)
    time.sleep(2.0)  # a duplicate would arrive just after the original
    counts = collections.Counter(
        tcc for tcc in mail_tccs(system) if TCC_BASE <= tcc < TCC_BASE + backlog
    )
    stack.wait_ready("router")
    arrived = [mails[TCC_BASE + i] for i in range(backlog) if TCC_BASE + i in mails]
    out = {
        "backlog": backlog,
        "accepted": accepted,
        "outage_s": outage_s,
        "seconds": (max(arrived) - restarted) if arrived else float("inf"),
        "missing": backlog - len(arrived),
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
    }
    log.info(
        "  backlog of %d drained %.1f s after the restart (%d missing, %d duplicates)",
        backlog,
        out["seconds"],
        out["missing"],
        out["duplicates"],
    )
    return out
