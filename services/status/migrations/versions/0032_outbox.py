"""status_outbox: a staff action's events saved with its change until the broker has them

A reply, a transfer or a close made while the broker was away was saved, answered 503 ("saved;
refdesk passes it on once the broker answers") and then lost when the producer gave up waiting
for the topic's metadata: the patron never got the reply while the console said refdesk was
still trying (an outside review). Each action now writes its events here in its own
transaction; they are published after the commit and, failing that, by the periodic relay.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_status_outbox_key", "status_outbox", ["key"])


def downgrade() -> None:
    op.drop_index("ix_status_outbox_key", table_name="status_outbox")
    op.drop_table("status_outbox")
