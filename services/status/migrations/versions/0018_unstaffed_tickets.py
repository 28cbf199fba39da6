"""a ticket nobody Online could take reaches the desk

`conversations.unstaffed` marks a conversation the router made a ticket in its department
because nobody there was Online (a renewal when NW Circulation has nobody signed in, a citation
question when the Writing Center's tutor has left): the desk's own staff see it too until
someone claims it, where before only that department's staff and supervisors did, and a patron
told "a tutor will join" waited with no librarian at the desk able to see them.
`desk_changes.desk` carries the same to the live feed. Existing rows stay false: tickets
already waiting are not found again (the queue's "All departments" filter shows them to
supervisors).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the two columns."""
    op.add_column(
        "conversations",
        sa.Column("unstaffed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "desk_changes", sa.Column("desk", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    """Drop them again (in place: a rebuilt table would lose the queue's expression index)."""
    op.drop_column("desk_changes", "desk")
    op.drop_column("conversations", "unstaffed")
