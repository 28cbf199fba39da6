"""when each sign-in token was last used

`staff_tokens.last_used_at`: the latest request or console sign-in made with a bearer token,
to the minute (written by the periodic task from what each replica noted, never per request).
Admins tell a token in daily use from one nobody has used since it was issued, and revoke the
latter. Existing tokens start empty ("not used since this was recorded").

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    op.add_column(
        "staff_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Drop it again."""
    op.drop_column("staff_tokens", "last_used_at")
