"""A database that holds ingest's writes (another process's write lock on its SQLite file) is
named in ingest's log while it happens: the runner, the unit, its wait and its run, never the
patron's data; the webhook is still answered once the lock goes, and its message published
once. Real broker, real SQLite file."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.integration.ingest.conftest import ingest_settings, post_sms, running, sms_form
from tests.kafka_helpers import read_to_end

HELD_S = 2.5
"""Long enough that the write still waits a second after a slow read and publish."""
TEXT = "Hi, this is Odalys Ferreira, TCC ID 5550123, I lost my library book"


def hold_write_lock(
    path: Path, locked: threading.Event, released: threading.Event, seconds: float
) -> None:
    """Take SQLite's write lock on the file (as another process's writer would), keep it for
    `seconds`, then let it go."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        released.set()
    finally:
        conn.close()


async def test_a_held_write_is_named_in_the_log_and_the_webhook_still_lands_once(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ingest.db"
    settings = ingest_settings(kafka_bootstrap, f"sqlite+aiosqlite:///{path}", tmp_path)
    form = sms_form(TEXT, sender="+18175550144")
    caplog.set_level(logging.INFO)
    async with running(settings) as client:
        locked, released = threading.Event(), threading.Event()
        holder = threading.Thread(target=hold_write_lock, args=(path, locked, released, HELD_S))
        holder.start()
        assert locked.wait(10)
        answer = await post_sms(client, form)
        answered_after_release = released.is_set()
        holder.join()
    assert answer.status_code == 200
    assert answered_after_release  # the answer waited for the held write, not around it

    slow = [r for r in caplog.records if r.getMessage() == "a unit of database work was slow"]
    assert slow, "ingest did not name the held write"
    named = {r.__dict__["runner"] for r in slow}
    assert named == {"ingest-writes"}
    assert all(r.levelno == logging.WARNING for r in slow)
    assert max(r.__dict__["ran_ms"] + r.__dict__["waited_ms"] for r in slow) >= 1000
    fields = json.dumps([r.__dict__ for r in slow], default=repr)
    for private in ("Odalys", "5550123", "8175550144", "library book"):
        assert private not in fields

    events = await read_to_end(
        kafka_bootstrap,
        "refdesk.interactions",
        where=lambda e: e.get("data", {}).get("provider_message_id") == form["MessageSid"],
    )
    assert len(events) == 1
