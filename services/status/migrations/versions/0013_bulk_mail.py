"""a conversation knows it was mailed to many

`conversations.bulk` is true once an email of the conversation said it went to many
(`InteractionReceived.bulk`: Precedence bulk, list or junk; List-Id, List-Unsubscribe or
List-Post). A staff transfer sends such a conversation no hand-off and a close no survey: an
outside probe's list digest, transferred and closed, sent both to the whole list. Existing rows
are false.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    op.add_column(
        "conversations",
        sa.Column("bulk", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    """Drop it again (in place: a rebuilt table would lose the queue's expression index)."""
    op.drop_column("conversations", "bulk")
