"""a close remembers the latest patron message it accounted for

A patron's message on its way when a librarian pressed Close (received before the close, applied
after it) landed in the closed conversation, in no queue: the reopen rule compared the
message's time with the close's. The close now keeps the received time of the latest patron
message it accounted for (`closed_through`, on the queue's row and on the statistics row), and
a patron message received after that reopens the conversation, in the queue and the
statistics alike. Existing rows: none set, the close's own time as before.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column to both tables."""
    for table in ("conversations", "desk_stats"):
        op.add_column(table, sa.Column("closed_through", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    op.drop_column("desk_stats", "closed_through")
    op.drop_column("conversations", "closed_through")
