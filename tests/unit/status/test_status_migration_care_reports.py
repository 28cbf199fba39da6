"""Status migration 0036: each conversation's one CARE Team report record becomes a record of
its own in `care_reports`, so a colleague's later record and a withdrawal find it there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from shared.db import create_engine, migrate

T = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_each_recorded_report_is_kept_as_its_filers_record(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate(engine, "status", "0035")
        async with engine.begin() as conn:
            for cid, by in (("c-filed", "mgarcia"), ("c-none", None)):
                await conn.execute(
                    sa.text(
                        "INSERT INTO conversations (conversation_id, channel, opened_at,"
                        " last_message_at, state, crisis, priority, overnight, blocked,"
                        " automatic_only, routed, safety_review, care_report_at, care_report_by)"
                        " VALUES (:cid, 'chat', :t, :t, 'closed', true, 'urgent', false, false,"
                        " false, true, false, :at, :by)"
                    ),
                    {"cid": cid, "t": T, "at": T if by else None, "by": by},
                )
        await migrate(engine, "status")
        async with engine.connect() as conn:
            records = (
                await conn.execute(
                    sa.text("SELECT conversation_id, staff_id, withdrawn_at FROM care_reports")
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in records] == [("c-filed", "mgarcia", None)]
