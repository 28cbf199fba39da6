"""when each conversation's CARE Team and safety-review alerts last went out, and what its last
circulation email named

A follow-up's crisis alert and resources, or its safety-review alert, were sent for every
message, and a circulation email again for every message naming a patron, TCC ID or item even
when it named the same: one patron texting 200 times in a minute sent the CARE Team 31 alerts,
the patron 31 crisis texts and the circulation managers 21 emails (an outside review). The
router now remembers when it last alerted and what it last emailed.

Revision ID: router_0007
Revises: router_0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "router_0007"
down_revision = "router_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamp = sa.DateTime(timezone=True)
    op.add_column("router_conversations", sa.Column("crisis_alerted_at", stamp, nullable=True))
    op.add_column("router_conversations", sa.Column("review_alerted_at", stamp, nullable=True))
    op.add_column(
        "router_conversations", sa.Column("circulation_named", sa.String(64), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("router_conversations", "circulation_named")
    op.drop_column("router_conversations", "review_alerted_at")
    op.drop_column("router_conversations", "crisis_alerted_at")
