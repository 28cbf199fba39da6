"""a reply still unsent minutes after it was written no longer counts as answered

A staff reply answered the patron as soon as it was written: while the mail relay was down for
hours the queue read "Answered" and the conversation sat in the last band, below every patron
waiting, though nothing had reached the patron (a shift probe). The sweep now puts such a
patron back to waiting and marks the conversation with the reply (`unsent_reply`); the reply
going out answers them again. Two partial indexes keep the sweep's two reads to the few rows
concerned: replies not reported on yet, and the conversations marked.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_lines = sa.table("transcript_entries", sa.column("kind"), sa.column("delivery_state"))
REPLY_UNSENT = sa.and_(
    _lines.c.kind == sa.literal("staff_reply", literal_execute=True),
    _lines.c.delivery_state == sa.literal("queued", literal_execute=True),
)
"""As models.REPLY_UNSENT."""
REOPENED = sa.table("conversations", sa.column("unsent_reply")).c.unsent_reply.is_not(None)
"""As models.REOPENED."""


def upgrade() -> None:
    """Add the column and the two partial indexes."""
    op.add_column("conversations", sa.Column("unsent_reply", sa.String(128), nullable=True))
    op.create_index(
        "ix_transcript_reply_unsent",
        "transcript_entries",
        ["at"],
        sqlite_where=REPLY_UNSENT,
        postgresql_where=REPLY_UNSENT,
    )
    op.create_index(
        "ix_conversations_unsent_reply",
        "conversations",
        ["unsent_reply"],
        sqlite_where=REOPENED,
        postgresql_where=REOPENED,
    )


def downgrade() -> None:
    """Drop them again (in place: a rebuilt table would lose the queue's expression index)."""
    op.drop_index("ix_conversations_unsent_reply", "conversations")
    op.drop_index("ix_transcript_reply_unsent", "transcript_entries")
    op.drop_column("conversations", "unsent_reply")
