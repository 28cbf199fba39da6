"""`broad`: SQLite's planner is told a condition is broad; every database reads the condition."""

from __future__ import annotations

import sqlite3

from sqlalchemy import Column, Integer, MetaData, String, Table, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from shared.db import broad

rows = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("state", String))
IS_OPEN = rows.c.state == literal("open", literal_execute=True)


def test_sqlite_reads_it_as_a_likelihood_and_others_as_the_condition() -> None:
    query = select(rows.c.id).where(broad(IS_OPEN))
    inline = {"literal_binds": True}
    on_sqlite = str(query.compile(dialect=sqlite.dialect(), compile_kwargs=inline))
    on_postgres = str(query.compile(dialect=postgresql.dialect(), compile_kwargs=inline))
    assert "WHERE likelihood(rows.state = 'open', 0.9)" in on_sqlite, on_sqlite
    assert on_sqlite.rstrip().endswith("0.9)"), on_sqlite  # no "= 1" after it
    assert on_postgres.rstrip().endswith("WHERE rows.state = 'open'"), on_postgres


def test_statements_with_different_conditions_do_not_share_a_cache_key() -> None:
    one = select(rows.c.id).where(broad(rows.c.state == "open"))
    other = select(rows.c.id).where(broad(rows.c.state != "open"))
    again = select(rows.c.id).where(broad(rows.c.state == "open"))
    assert one._generate_cache_key() != other._generate_cache_key()
    assert one._generate_cache_key() == again._generate_cache_key()


def test_sqlite_selects_the_same_rows_and_prefers_the_partial_index() -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(
        """
        CREATE TABLE rows (id INTEGER PRIMARY KEY, state TEXT, flagged INTEGER, at TEXT);
        CREATE INDEX ix_state ON rows (state);
        CREATE INDEX ix_flagged ON rows (at) WHERE state = 'open' AND flagged = 1;
        INSERT INTO rows (state, flagged, at) VALUES
            ('open', 1, 'b'), ('open', 0, 'a'), ('closed', 1, 'c'), ('open', 1, 'a');
        """
    )
    plain = "SELECT id FROM rows WHERE state = 'open' AND flagged = 1 ORDER BY at"
    hinted = "SELECT id FROM rows WHERE likelihood(state = 'open', 0.9) AND flagged = 1 ORDER BY at"
    assert db.execute(hinted).fetchall() == db.execute(plain).fetchall() == [(4,), (1,)]
    assert "ix_state" in str(db.execute(f"EXPLAIN QUERY PLAN {plain}").fetchall())
    assert "ix_flagged" in str(db.execute(f"EXPLAIN QUERY PLAN {hinted}").fetchall())
