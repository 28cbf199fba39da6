"""`shared.db.checkpoint` copies a SQLite file's write-ahead log into the database, so the
periodic task, not a request's commit, does that work."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from shared.db import checkpoint, create_engine, session_factory


async def test_checkpoint_copies_the_whole_log_back(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    sessions = session_factory(engine)
    async with sessions() as session:
        await session.execute(text("PRAGMA wal_autocheckpoint=0"))  # only ours, in this test
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        for i in range(200):
            await session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 500 + str(i)})
        await session.commit()
        database = tmp_path / "x.db"
        logged = (tmp_path / "x.db-wal").stat().st_size
        before = database.stat().st_size
        await checkpoint(session)
        after = database.stat().st_size
    await engine.dispose()
    assert logged > 100_000  # the log held the writes
    assert before < 10_000 < 100_000 < after  # and the checkpoint copied them into the file
