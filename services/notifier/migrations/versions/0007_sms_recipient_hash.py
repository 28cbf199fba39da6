"""SMS rows keep a keyed hash of the number, so a lookup excludes its texts in every conversation

A text in doubt is looked up in Twilio's list by number and body, and must never take a
message already attributed to another notification. That exclusion was per conversation, but
one number has several conversations (a patron texting again after a thread's window), each
with the same after-hours acknowledgement: `recipient_hash` (HMAC-SHA256 of the number under a
key the notifier generates and keeps in `ledger_keys`, never the number itself) lets it be per
number, served by a partial index over SMS rows.

The rows a lookup can still meet get the hash now: every pending SMS row, and every one
finished since a day before the oldest pending SMS row was recorded (or before now). A lookup
reaches back no further than its attempt in doubt, which began after its own row was
recorded, so an older row's texts are never listed to it.

Revision ID: notifier_0007
Revises: notifier_0006
Create Date: 2026-12-05
"""

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "notifier_0007"
down_revision = "notifier_0006"
branch_labels = None
depends_on = None

HAS_RECIPIENT_HASH = sa.text("recipient_hash IS NOT NULL")
BACKFILL_MARGIN = timedelta(days=1)
"""Slack for the clocks of replicas that recorded and finished rows."""

_ledger = sa.table(
    "send_ledger",
    sa.column("idempotency_key", sa.String),
    sa.column("channel", sa.String),
    sa.column("state", sa.String),
    sa.column("command", sa.JSON),
    sa.column("created_at", UTCDateTime()),
    sa.column("finished_at", UTCDateTime()),
    sa.column("recipient_hash", sa.String),
)


def upgrade() -> None:
    op.create_table(
        "ledger_keys",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("secret", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("send_ledger") as batch:
        batch.add_column(sa.Column("recipient_hash", sa.String(64), nullable=True))
    op.create_index(
        "ix_send_ledger_recipient",
        "send_ledger",
        ["recipient_hash"],
        sqlite_where=HAS_RECIPIENT_HASH,
        postgresql_where=HAS_RECIPIENT_HASH,
    )
    secret = secrets.token_hex(32)
    op.bulk_insert(
        sa.table("ledger_keys", sa.column("name", sa.String), sa.column("secret", sa.String)),
        [{"name": "recipient", "secret": secret}],
    )
    _backfill(op.get_bind(), bytes.fromhex(secret))


def _backfill(conn: sa.Connection, key: bytes) -> None:
    sms = _ledger.c.channel == "sms"
    pending = _ledger.c.state == "pending"
    oldest = conn.scalar(sa.select(sa.func.min(_ledger.c.created_at)).where(sms, pending))
    now = datetime.now(UTC)
    since = min(oldest or now, now) - BACKFILL_MARGIN
    rows = conn.execute(
        sa.select(_ledger.c.idempotency_key, _ledger.c.command).where(
            sms, sa.or_(pending, _ledger.c.finished_at >= since)
        )
    ).all()
    hashes = [
        {"k": idempotency_key, "h": _hash(str(command["recipient"]), key)}
        for idempotency_key, command in rows
    ]
    if hashes:
        conn.execute(
            sa.update(_ledger)
            .where(_ledger.c.idempotency_key == sa.bindparam("k"))
            .values(recipient_hash=sa.bindparam("h")),
            hashes,
        )


def _hash(number: str, key: bytes) -> str:
    """services.notifier.recipients.recipient_hash, as of this revision."""
    return hmac.new(key, number.encode("utf-8"), hashlib.sha256).hexdigest()


def downgrade() -> None:
    op.drop_index("ix_send_ledger_recipient", table_name="send_ledger")
    with op.batch_alter_table("send_ledger") as batch:
        batch.drop_column("recipient_hash")
    op.drop_table("ledger_keys")
