"""Status migration 0011: open crises whose re-escalation never reached a supervisor (the
notifier refused every one before) are re-escalated once more; others keep their stamps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from shared.db import create_engine, migrate

T = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)


async def test_open_unacknowledged_crises_are_re_escalated_again(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}")
    try:
        await migrate(engine, "status", "0010")
        rows = {
            "c-open": ("open", True, None),  # re-armed
            "c-acked": ("open", True, T),
            "c-closed": ("closed", True, None),
            "c-calm": ("open", False, None),
        }
        async with engine.begin() as conn:
            for cid, (state, crisis, acked) in rows.items():
                await conn.execute(
                    sa.text(
                        "INSERT INTO conversations (conversation_id, channel, opened_at,"
                        " last_message_at, state, crisis, crisis_at, acknowledged_at,"
                        " reescalated_at, priority, overnight, blocked, automatic_only, routed,"
                        " safety_review)"
                        " VALUES (:cid, 'sms', :t, :t, :state, :crisis, :t, :acked, :t,"
                        " 'urgent', 0, 0, 0, 1, 0)"
                    ),
                    {"cid": cid, "t": T, "state": state, "crisis": crisis, "acked": acked},
                )
        await migrate(engine, "status")
        async with engine.connect() as conn:
            stamped = dict(
                (
                    await conn.execute(
                        sa.text("SELECT conversation_id, reescalated_at FROM conversations")
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    assert stamped["c-open"] is None
    assert all(stamped[cid] is not None for cid in ("c-acked", "c-closed", "c-calm"))
