"""how long the patron has waited for an answer

`conversations.answered_at` is when staff last replied to the patron, `waiting_since` the
patron's oldest message no reply has followed (NULL: answered); the queue's "Waiting" counts
from it. Existing rows: a conversation nobody has answered waits since it opened; one whose
patron wrote after the first response waits since that latest message (the best the rows
know); the rest are answered.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_conversations = sa.table(
    "conversations",
    sa.column("opened_at", sa.DateTime(timezone=True)),
    sa.column("first_response_at", sa.DateTime(timezone=True)),
    sa.column("last_patron_at", sa.DateTime(timezone=True)),
    sa.column("answered_at", sa.DateTime(timezone=True)),
    sa.column("waiting_since", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Add the columns and fill them from what the rows know."""
    op.add_column("conversations", sa.Column("answered_at", sa.DateTime(timezone=True)))
    op.add_column("conversations", sa.Column("waiting_since", sa.DateTime(timezone=True)))
    c = _conversations.c
    op.execute(
        _conversations.update().values(
            answered_at=c.first_response_at,
            waiting_since=sa.case(
                (c.first_response_at.is_(None), c.opened_at),
                (c.last_patron_at > c.first_response_at, c.last_patron_at),
                else_=None,
            ),
        )
    )


def downgrade() -> None:
    """Drop them again (in place, not a batch: a rebuilt table would lose the queue's
    expression index)."""
    op.drop_column("conversations", "waiting_since")
    op.drop_column("conversations", "answered_at")
