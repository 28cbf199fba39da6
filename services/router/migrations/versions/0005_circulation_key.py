"""the first circulation email of each conversation's round, which its follow-ups thread under

The circulation managers' second email about a conversation (more details) carries the first
one's idempotency key, from which the notifier derives the first's Message-ID for In-Reply-To
and References. A conversation whose first email went out before this runs has none: its
follow-up goes out unthreaded, as before.

Revision ID: router_0005
Revises: router_0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "router_0005"
down_revision = "router_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "router_conversations", sa.Column("circulation_key", sa.String(128), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("router_conversations", "circulation_key")
