"""re-escalate once more the open crises whose re-escalation never reached a supervisor

Before this version the notifier refused every crisis re-escalation the status service asked
for (its context lacked what the email needs), yet the sweep stamped `reescalated_at`: an
open crisis nobody acknowledged was never brought to a supervisor. This clears the stamp of
every open, unacknowledged crisis, so the next sweep re-escalates each once, now as an email
that is sent. Nothing else changes; a downgrade leaves the stamps as they are then.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_conversations = sa.table(
    "conversations",
    sa.column("state", sa.String),
    sa.column("crisis", sa.Boolean),
    sa.column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.column("reescalated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Clear the stamp of open crises nobody acknowledged."""
    c = _conversations.c
    op.execute(
        _conversations.update()
        .where(
            c.state == "open",
            c.crisis == sa.true(),
            c.acknowledged_at.is_(None),
            c.reescalated_at.is_not(None),
        )
        .values(reescalated_at=None)
    )


def downgrade() -> None:
    """Nothing to undo: a stamp the sweep wrote again since is right."""
