"""a transcript keeps the chat platform's sequence of each patron message

`transcript_entries.seq` is the sender-side sequence a chat platform numbers a conversation's
messages with (`InteractionReceived.sequence`). The platform stamps messages to the second, so
a burst ("hi", "i need help", "with APA citations") shared one time and was shown in the order
of the lines' ids; the transcript now orders lines of the same time by it. Existing lines keep
NULL (read as 0).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    op.add_column("transcript_entries", sa.Column("seq", sa.Integer()))


def downgrade() -> None:
    """Drop it again."""
    op.drop_column("transcript_entries", "seq")
