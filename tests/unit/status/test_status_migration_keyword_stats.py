"""Status migration 0017: conversations of text keywords only (STOP, HELP, HOURS) had been
counted as questions in the desk statistics; the rows already counted are taken out, and every
other row stays as it was."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from shared.db import create_engine, migrate

T = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)


async def test_keyword_only_conversations_leave_the_count(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}")
    # conversation id: (channel, keyword answered, stats action, transfers)
    rows = {
        "sms-stop": ("sms", "i-stop", None, 0),  # STOP only: not a question
        "sms-question": ("sms", "i-hours", "answer", 0),  # HOURS, then a question: counted
        "sms-moved": ("sms", "i-help", None, 1),  # staff moved it: counted
        "chat-platform": ("chat", None, None, 0),  # placed by the chat platform: counted
    }
    try:
        await migrate(engine, "status", "0016")
        async with engine.begin() as conn:
            for cid, (channel, keyword, action, transfers) in rows.items():
                await conn.execute(
                    sa.text(
                        "INSERT INTO conversations (conversation_id, channel, opened_at,"
                        " last_message_at, state, crisis, priority, overnight, blocked,"
                        " automatic_only, routed, safety_review, keyword_answered)"
                        " VALUES (:cid, :channel, :t, :t, 'open', 0, 'normal', 0, 0, 0, 1, 0,"
                        " :keyword)"
                    ),
                    {"cid": cid, "channel": channel, "t": T, "keyword": keyword},
                )
                await conn.execute(
                    sa.text(
                        "INSERT INTO desk_stats (conversation_id, channel, received_at,"
                        " desk_day, desk_hour, desk_weekday, desk_week, desk_month,"
                        " fiscal_year, received_by, department, path, transfers, action,"
                        " overnight, crisis, safety_review)"
                        " VALUES (:cid, :channel, :t, :day, 14, 5, :week, '2026-12', 2027,"
                        " 'reference', 'reference', 'reference', :transfers, :action, 0, 0, 0)"
                    ),
                    {
                        "cid": cid,
                        "channel": channel,
                        "t": T,
                        "day": date(2026, 12, 5),
                        "week": date(2026, 11, 30),
                        "transfers": transfers,
                        "action": action,
                    },
                )
        await migrate(engine, "status")
        async with engine.connect() as conn:
            counted = dict(
                (
                    await conn.execute(
                        sa.text("SELECT conversation_id, received_by FROM desk_stats")
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    assert counted == {
        "sms-stop": None,
        "sms-question": "reference",
        "sms-moved": "reference",
        "chat-platform": "reference",
    }
