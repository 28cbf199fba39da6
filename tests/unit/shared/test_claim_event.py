"""shared.db.claim_events on SQLite and PostgreSQL: an event id is claimed once."""

from __future__ import annotations

import asyncio

from sqlalchemy import MetaData, select

from shared.db import claim_events, create_engine, processed_table


async def test_an_event_id_is_claimed_once_even_by_two_sessions_at_once(
    database_url: str,
) -> None:
    metadata = MetaData()
    table = processed_table(metadata, "claims_test")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with engine.connect() as conn:
            assert await claim_events(conn, table, "status", ["e1"]) == {"e1"}
            assert await claim_events(conn, table, "status", ["e1"]) == set()
            assert await claim_events(conn, table, "router", ["e1"]) == {"e1"}  # per consumer
            await conn.commit()

        async def claim(event_id: str) -> bool:
            async with engine.connect() as conn:
                claimed = event_id in await claim_events(conn, table, "status", [event_id])
                await asyncio.sleep(0.05)  # hold the transaction open while the other tries
                await conn.commit()
                return claimed

        both = await asyncio.gather(claim("e2"), claim("e2"))
        assert sorted(both) == [False, True]
        async with engine.connect() as conn:
            rows = (await conn.execute(select(table.c.consumer, table.c.event_id))).all()
        assert sorted(rows) == [("router", "e1"), ("status", "e1"), ("status", "e2")]
    finally:
        await engine.dispose()


async def test_a_batch_of_ids_is_claimed_in_one_statement_and_only_new_ones_come_back(
    database_url: str,
) -> None:
    metadata = MetaData()
    table = processed_table(metadata, "batch_claims_test")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with engine.connect() as conn:
            assert await claim_events(conn, table, "status", ["a", "b"]) == {"a", "b"}
            # seen before, repeated within the batch, new
            assert await claim_events(conn, table, "status", ["b", "c", "c", "a", "d"]) == {
                "c",
                "d",
            }
            assert await claim_events(conn, table, "status", []) == set()
            await conn.commit()

        async def claim(ids: list[str]) -> set[str]:
            async with engine.connect() as conn:
                claimed = await claim_events(conn, table, "status", ids)
                await asyncio.sleep(0.05)  # hold the transaction open while the other tries
                await conn.commit()
                return claimed

        first, second = await asyncio.gather(claim(["e", "f"]), claim(["f", "g"]))
        assert "e" in first and "g" in second
        assert ("f" in first) != ("f" in second)  # one of the two replicas, never both
    finally:
        await engine.dispose()


async def test_processed_ids_go_once_no_topic_can_hold_their_events(database_url: str) -> None:
    """The processed-id tables grew for ever (an operator's review: about six rows per
    interaction in status): an id recorded before its topics' retention and a day is deleted,
    a batch at a time, and a newer one is kept."""
    from datetime import UTC, datetime, timedelta

    from shared.db import PURGE_PROCESSED_BATCH, processed_cutoff, purge_processed

    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    cutoff = processed_cutoff(now, retention_days=[7, 7, 3])
    assert cutoff == now - timedelta(days=8)
    metadata = MetaData()
    table = processed_table(metadata, "purge_test")
    engine = create_engine(database_url)
    old = PURGE_PROCESSED_BATCH + 5
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            rows = [
                {
                    "consumer": "status",
                    "event_id": f"old-{n}",
                    "processed_at": cutoff - timedelta(1),
                }
                for n in range(old)
            ]
            rows.append({"consumer": "status", "event_id": "new", "processed_at": cutoff})
            await conn.execute(table.insert(), rows)
        purged = []
        for _ in range(3):
            async with engine.begin() as conn:
                purged.append(
                    await conn.run_sync(lambda sync: purge_processed(sync, table, before=cutoff))
                )
        assert purged == [PURGE_PROCESSED_BATCH, 5, 0]
        async with engine.connect() as conn:
            left = (await conn.execute(select(table.c.event_id))).scalars().all()
        assert left == ["new"]
    finally:
        await engine.dispose()
