"""Transcripts, the transcript access log, the live change feed, and the console's columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CONVERSATION_COLUMNS: tuple[sa.Column[object], ...] = (
    sa.Column("lang", sa.String(8), nullable=False, server_default="en"),
    sa.Column("safety_review", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("risk_score", sa.Float()),
    sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("routed", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("action", sa.String(32)),
    sa.Column("subject", sa.String(300)),
    sa.Column("preview", sa.String(200)),
    sa.Column("patron_name", sa.String(200)),
    sa.Column("last_patron_at", sa.DateTime(timezone=True)),
    sa.Column("closed_by", sa.String(64)),
    sa.Column("read_scale", sa.Integer()),
    sa.Column("topic", sa.String(32)),
    sa.Column("purged_at", sa.DateTime(timezone=True)),
    sa.Column("assignee_since", sa.DateTime(timezone=True)),
)

# SQLite keeps an FTS5 index of transcript text in step with the table by triggers;
# PostgreSQL searches a GIN expression index with to_tsvector('simple', text).
SQLITE_FTS = (
    "CREATE VIRTUAL TABLE transcript_fts USING fts5("
    "text, content='transcript_entries', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER transcript_fts_ai AFTER INSERT ON transcript_entries BEGIN "
    "INSERT INTO transcript_fts(rowid, text) VALUES (new.rowid, coalesce(new.text, '')); END",
    "CREATE TRIGGER transcript_fts_ad AFTER DELETE ON transcript_entries BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, text) "
    "VALUES ('delete', old.rowid, coalesce(old.text, '')); END",
    "CREATE TRIGGER transcript_fts_au AFTER UPDATE OF text ON transcript_entries BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, text) "
    "VALUES ('delete', old.rowid, coalesce(old.text, '')); "
    "INSERT INTO transcript_fts(rowid, text) VALUES (new.rowid, coalesce(new.text, '')); END",
)
POSTGRES_FTS = (
    "CREATE INDEX ix_transcript_fts ON transcript_entries "
    "USING gin (to_tsvector('simple', coalesce(text, '')))",
)


def upgrade() -> None:
    """Add the console's columns and tables."""
    with op.batch_alter_table("conversations") as batch:
        for column in CONVERSATION_COLUMNS:
            batch.add_column(column)
    op.create_table(
        "transcript_entries",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16)),
        sa.Column("kind", sa.String(32)),
        sa.Column("text", sa.Text()),
        sa.Column("subject", sa.String(300)),
        sa.Column("message_id", sa.String(300)),
        sa.Column("delivery_state", sa.String(16)),
        sa.Column("delivery_reason", sa.String(200)),
        sa.Column("segments", sa.Integer()),
        sa.Column("attachments", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_transcript_conversation_at", "transcript_entries", ["conversation_id", "at"]
    )
    op.create_table(
        "transcript_access_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("staff_id", sa.String(64), nullable=False, index=True),
        sa.Column("conversation_id", sa.String(128), index=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("detail", sa.String(300)),
    )
    op.create_table(
        "desk_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("department", sa.String(64)),
        sa.Column("crisis", sa.Boolean(), nullable=False),
        sa.Column("what", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_index("ix_conversations_contact", "conversations", ["patron_contact"])
    statements = SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else POSTGRES_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    """Drop them again."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS transcript_fts")
    op.drop_index("ix_conversations_contact", "conversations")
    op.drop_table("desk_changes")
    op.drop_table("transcript_access_log")
    op.drop_table("transcript_entries")
    with op.batch_alter_table("conversations") as batch:
        for column in reversed(CONVERSATION_COLUMNS):
            batch.drop_column(column.name)
