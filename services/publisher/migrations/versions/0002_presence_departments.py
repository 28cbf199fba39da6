"""Department presence counts as last published, each with the time it holds from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

Filled from the tally so an upgraded publisher does not publish every count again: each
department's Online count, from the newest change among its staff.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _aware(value: Any) -> datetime:
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def upgrade() -> None:
    """Create presence_departments and fill it from presence_tally."""
    table = op.create_table(
        "presence_departments",
        sa.Column("department", sa.String(64), primary_key=True),
        sa.Column("online", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    rows = op.get_bind().execute(
        sa.text("SELECT online, departments, changed_at FROM presence_tally")
    )
    online: Counter[str] = Counter()
    newest: dict[str, datetime] = {}
    for is_online, departments, changed_at in rows:
        names = json.loads(departments) if isinstance(departments, str) else departments
        for department in set(names or ()):
            online[department] += bool(is_online)
            stamp = _aware(changed_at)
            newest[department] = max(newest.get(department, stamp), stamp)
    op.bulk_insert(
        table,
        [
            {"department": d, "online": online[d], "changed_at": t}
            for d, t in sorted(newest.items())
        ],
    )


def downgrade() -> None:
    """Drop presence_departments."""
    op.drop_table("presence_departments")
