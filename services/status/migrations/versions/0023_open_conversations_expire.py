"""open conversations nobody closed expire too

Retention removed a transcript a set time after its conversation closed, and a conversation
the desk never saw after its last message; one answered and never closed (the queue keeps
answered conversations open, listed last) or a crisis left open kept its transcript, contact
and preview without end (a privacy review). Retention now closes and purges an open
conversation as long after its last message, read off this partial index.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

IS_OPEN = sa.table("conversations", sa.column("state")).c.state == sa.literal(
    "open", literal_execute=True
)
"""As models.IS_OPEN."""


def upgrade() -> None:
    """Index the open conversations by their last message."""
    op.create_index(
        "ix_conversations_open_last_message",
        "conversations",
        ["last_message_at"],
        sqlite_where=IS_OPEN,
        postgresql_where=IS_OPEN,
    )


def downgrade() -> None:
    """Drop it again."""
    op.drop_index("ix_conversations_open_last_message", "conversations")
