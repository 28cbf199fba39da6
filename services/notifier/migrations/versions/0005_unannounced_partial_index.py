"""the sweep for lost announcements reads final, unannounced rows only

`ix_send_ledger_unpublished` (outcome_published, channel) also held every pending row, since a
pending row is not yet announced either. A lane's sweep (every poll interval) read and sorted
them all to find the few final outcomes whose announcement was lost: 5.9 ms per sweep with
12,000 pending, against 0.007 ms. The re-lease of such an outcome
(`idempotency_key IN (...) AND outcome_published = false`) was served from it too, not by key.
A partial index over final, unannounced rows in the sweep's order replaces it.

Revision ID: notifier_0005
Revises: notifier_0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0005"
down_revision = "notifier_0004"
branch_labels = None
depends_on = None

_ledger = sa.table("send_ledger", sa.column("outcome_published", sa.Boolean), sa.column("state"))
UNANNOUNCED = sa.and_(
    _ledger.c.outcome_published == sa.false(),
    _ledger.c.state != sa.literal("pending", literal_execute=True),
)
"""As tables.UNANNOUNCED, rendered for each dialect (SQLite matches a query to a partial index
only when they spell the predicate alike: `= 0` there, `= false` on PostgreSQL)."""


def upgrade() -> None:
    op.drop_index("ix_send_ledger_unpublished", table_name="send_ledger")
    op.create_index(
        "ix_send_ledger_unannounced",
        "send_ledger",
        ["channel", "finished_at"],
        sqlite_where=UNANNOUNCED,
        postgresql_where=UNANNOUNCED,
    )


def downgrade() -> None:
    op.drop_index("ix_send_ledger_unannounced", table_name="send_ledger")
    op.create_index("ix_send_ledger_unpublished", "send_ledger", ["outcome_published", "channel"])
