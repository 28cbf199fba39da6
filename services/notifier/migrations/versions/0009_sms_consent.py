"""A number's opt-outs and opt-ins, so refdesk stops texting a patron who texted STOP

`sms_consent`: one row per STOP or START command (its idempotency key unique, so a replay
changes nothing), numbered in the order recorded, holding the number's keyed hash as the
ledger's SMS rows hold it (`recipient_hash`, migration 0007; never the number), whether it
opted out, and an opt-out's one confirmation text still sent. The number's latest row (the
highest `id`, whatever the replicas' clocks) decides whether a text goes out, served by the
index on (recipient_hash, id).

Revision ID: notifier_0009
Revises: notifier_0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0009"
down_revision = "notifier_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_consent",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column("recipient_hash", sa.String(64), nullable=False),
        sa.Column("opted_out", sa.Boolean, nullable=False),
        sa.Column("confirmation_key", sa.String(128), nullable=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sms_consent_recipient", "sms_consent", ["recipient_hash", "id"])


def downgrade() -> None:
    op.drop_index("ix_sms_consent_recipient", table_name="sms_consent")
    op.drop_table("sms_consent")
