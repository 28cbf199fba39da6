"""the live feed names a change's librarian

`desk_changes.assignee` is the conversation's librarian when it changed: a crisis the router
escalates stays with the librarian who has the patron, in the CARE Team's queue, and that
librarian's console must keep receiving its changes. Existing rows are a few minutes of feed;
they keep NULL.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    op.add_column("desk_changes", sa.Column("assignee", sa.String(64)))


def downgrade() -> None:
    """Drop it again."""
    op.drop_column("desk_changes", "assignee")
