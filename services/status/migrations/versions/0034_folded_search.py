"""ix_transcript_fts without diacritics: "Jose" finds "José" on PostgreSQL as on SQLite

The transcript's text index read words as written, so on PostgreSQL a search for "Jose" missed
"José", "Garcia" missed "García" and "cafe" missed "café" (SQLite's FTS5 tokenizer folds
diacritics itself): on a desk where many patrons write in Spanish, a librarian typing a name
without its accents found nothing. The index is rebuilt on the text decomposed, without its
combining marks and with the few letters with a stroke given their base letter; the search
(`services/status/conversations/search.py`) folds the typed words alike. The expression is
written here as `services/status/conversations/folding.py` builds it (a test holds the two
equal: the planner uses the index only for the very expression).

The new index is built beside the old one before the old is dropped: while it builds (about a
second per 100,000 lines) the console reads on and new lines wait; the old one's exclusive lock
is taken only at the end.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

MARKS = "[\\u0300-\\u036f]"
STROKED = "ĐđØøŁłĦħŦŧı"
UNSTROKED = "DdOoLlHhTti"
FOLDED = (
    "translate(regexp_replace(normalize(coalesce(text, ''), NFD), "
    f"'{MARKS}', '', 'g'), '{STROKED}', '{UNSTROKED}')"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # FTS5's tokenizer folds diacritics already
    op.execute(
        "CREATE INDEX ix_transcript_fts_folded ON transcript_entries "
        f"USING gin (to_tsvector('simple', {FOLDED}))"
    )
    op.execute("DROP INDEX IF EXISTS ix_transcript_fts")
    op.execute("ALTER INDEX ix_transcript_fts_folded RENAME TO ix_transcript_fts")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute(
        "CREATE INDEX ix_transcript_fts_plain ON transcript_entries "
        "USING gin (to_tsvector('simple', coalesce(text, '')))"
    )
    op.execute("DROP INDEX IF EXISTS ix_transcript_fts")
    op.execute("ALTER INDEX ix_transcript_fts_plain RENAME TO ix_transcript_fts")
