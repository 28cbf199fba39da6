"""ix_conversations_unpurged_closed: retention reads only the closed conversations it has not
purged yet

The sweep looked every 5 s for closed conversations past the transcripts' retention and not
purged, through an index of every closed conversation: with a year's history purged it read
400,000 rows each time (0.1-0.3 s on PostgreSQL, an outside review), and more every year.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

UNPURGED_CLOSED = sa.text("state = 'closed' AND purged_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_conversations_unpurged_closed",
        "conversations",
        ["closed_at"],
        sqlite_where=UNPURGED_CLOSED,
        postgresql_where=UNPURGED_CLOSED,
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_unpurged_closed", "conversations")
