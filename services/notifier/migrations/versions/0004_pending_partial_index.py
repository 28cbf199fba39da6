"""the pending-age index holds pending rows only, so claims lease their rows by key

`ix_send_ledger_pending` (state, created_at) serves the oldest-pending gauge. Without table
statistics SQLite's planner preferred it for the claim's lease update
(`idempotency_key IN (...) AND state = 'pending' AND ...`) over the primary key, and so read
every pending row for each claim: 11.5 ms per claim with 12,000 waiting, against 0.05 ms by
key, paid once per email while a backlog drains. A partial index on created_at over the
pending rows serves the gauge as before and offers the update nothing to misread.

Revision ID: notifier_0004
Revises: notifier_0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0004"
down_revision = "notifier_0003"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_send_ledger_pending", table_name="send_ledger")
    op.create_index(
        "ix_send_ledger_pending",
        "send_ledger",
        ["created_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_send_ledger_pending", table_name="send_ledger")
    op.create_index("ix_send_ledger_pending", "send_ledger", ["state", "created_at"])
