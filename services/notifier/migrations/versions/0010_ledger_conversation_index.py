"""ix_send_ledger_conversation: an erasure finds a conversation's messages off an index

`ledger.erase` looks up the rows of the conversations a records request erases by
`conversation_id`, which no index served: it read the whole ledger (215 ms at 600,000 rows on
PostgreSQL, an outside review), more with every day of retention.

Revision ID: notifier_0010
Revises: notifier_0009
Create Date: 2026-12-07
"""

from alembic import op

revision = "notifier_0010"
down_revision = "notifier_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_send_ledger_conversation", "send_ledger", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_send_ledger_conversation", table_name="send_ledger")
