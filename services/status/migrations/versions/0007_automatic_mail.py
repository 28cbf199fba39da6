"""mail a mail system sent: conversations only such mail opened, and what bounces reported

An automatic reply or a bounce is a line of its conversation but nobody's message: a
conversation it opened (`conversations.automatic_only`) shows on the desk only once the router
routes it. A bounce names the email it reports on by Message-ID; the most final report per
conversation and Message-ID is kept in `email_bounces`, whether the email's line is known yet
or not (`conversations.bounce_waiting`: one came first, so announcements look for it), and
dropped with the transcript retention, by `reported_at`. Nobody closes a conversation the desk
never sees (a blocked sender's, or one only mail systems wrote to), so retention counts from
its last message, read off a partial index of them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_conversations = sa.table(
    "conversations",
    sa.column("routed", sa.Boolean),
    sa.column("blocked", sa.Boolean),
    sa.column("automatic_only", sa.Boolean),
)
NEVER_SHOWN = sa.and_(
    _conversations.c.routed == sa.false(),
    sa.or_(_conversations.c.blocked == sa.true(), _conversations.c.automatic_only == sa.true()),
)
"""As models.NEVER_SHOWN, rendered for each dialect (SQLite matches a query to a partial index
only when they spell the predicate alike)."""


def upgrade() -> None:
    """Add the column, its retention index and the bounces' table."""
    op.add_column(
        "conversations",
        sa.Column("automatic_only", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "conversations",
        sa.Column("bounce_waiting", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_conversations_never_shown",
        "conversations",
        ["last_message_at"],
        sqlite_where=NEVER_SHOWN,
        postgresql_where=NEVER_SHOWN,
    )
    op.create_table(
        "email_bounces",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16)),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_table("email_bounces")
    op.drop_index("ix_conversations_never_shown", "conversations")
    # not a batch: SQLite drops the column in place (a rebuilt table would lose the queue's
    # expression index)
    op.drop_column("conversations", "bounce_waiting")
    op.drop_column("conversations", "automatic_only")
