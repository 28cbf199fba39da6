"""a conversation whose email failed the sender checks says so

An email whose sender failed the receiving mail system's checks (DMARC, or SPF without DKIM)
was shown and answered as the address in its From, which may be a forger's victim (an outside
review). `sender_unverified` marks its conversation: the console warns where staff reply.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN (SQLite's batch mode would rebuild the table and its partial indexes)
    op.add_column(
        "conversations",
        sa.Column("sender_unverified", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("conversations", "sender_unverified")
