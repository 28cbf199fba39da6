"""the latest close of each conversation, which names the opening after it

A conversation closed and reopened by the patron is a new opening, with its own after-hours
acknowledgement; the acknowledgement's idempotency key is derived from the close before the
opening (its `closed_at`), so it stays deterministic from the events. A conversation already
closed when this runs gets `before-router-0004` (its close's time was not kept), so its next
opening is acknowledged under a key of its own; the others have none until their next close.

Revision ID: router_0004
Revises: router_0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "router_0004"
down_revision = "router_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("router_conversations", sa.Column("last_close", sa.String(64), nullable=True))
    conversations = sa.table(
        "router_conversations", sa.column("closed", sa.Boolean), sa.column("last_close")
    )
    op.execute(
        conversations.update()
        .where(conversations.c.closed == sa.true())
        .values(last_close="before-router-0004")
    )


def downgrade() -> None:
    op.drop_column("router_conversations", "last_close")
