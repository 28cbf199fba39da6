"""router_conversations.last_message_at: the patron's latest message the router decided

A close made while the broker was away reaches the router late, from status's outbox, and
could come after a message the patron wrote once it was made: the router closed the
conversation again, sent the survey after the patron's new question, and routed their next
text as a new round (an outside review). A close whose `through` (the latest message it
accounted for) is older than this is stale, and changes nothing.

Revision ID: router_0008
Revises: router_0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "router_0008"
down_revision = "router_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "router_conversations",
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("router_conversations", "last_message_at")
