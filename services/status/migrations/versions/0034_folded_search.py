"""ix_transcript_fts without diacritics: "Jose" finds "José" on PostgreSQL as on SQLite

The transcript's text index read words as written, so on PostgreSQL a search for "Jose" missed
"José", "Garcia" missed "García" and "cafe" missed "café" (SQLite's FTS5 tokenizer folds
diacritics itself): on a desk where many patrons write in Spanish, a librarian typing a name
without its accents found nothing. The index is rebuilt on the text decomposed, without its
combining marks and with the few letters with a stroke given their base letter; the search
(`services/status/conversations/search.py`) folds the typed words alike. The expression is
written here as `services/status/conversations/folding.py` builds it (a test holds the two
equal: the planner uses the index only for the very expression).

The index is no longer built here: built inside the migration's transaction, then the old one
dropped, it deadlocked with the desk's transcript writes under traffic. The status service
builds it at start, concurrently (`services/status/search_index.py`); this revision stays so
the chain of revisions is whole, and does nothing.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: `search_index.ensure` builds the index when status starts."""


def downgrade() -> None:
    """Nothing (an older status searches on the plain text, off no index, until restored)."""
