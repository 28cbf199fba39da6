"""seen keys, sms threads, blocklist

Revision ID: ingest_0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_keys",
        sa.Column("namespace", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("conversation_id", sa.String(128), nullable=True),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_seen_keys_expires_at", "seen_keys", ["expires_at"])
    op.create_table(
        "sms_threads",
        sa.Column("contact", sa.String(32), primary_key=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("last_message_at", sa.DateTime(), nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
    )
    op.create_table(
        "blocked_contacts",
        sa.Column("contact", sa.String(255), primary_key=True),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blocked_contacts")
    op.drop_table("sms_threads")
    op.drop_table("seen_keys")
