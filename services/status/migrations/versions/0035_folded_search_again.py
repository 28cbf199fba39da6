"""ix_transcript_fts on the folded expression, wherever an earlier 0034 left another

A first version of migration 0034 built the index on a `translate()` of every accented letter;
a database migrated with it keeps that index, which the search's expression no longer matches.
The status service now checks the index at every start and builds it again, concurrently, where
it is not on the folded expression (`services/status/search_index.py`); this revision stays so
the chain of revisions is whole, and does nothing.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: `search_index.ensure` rebuilds the index when status starts."""


def downgrade() -> None:
    """Nothing."""
