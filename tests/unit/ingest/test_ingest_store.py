"""IngestStore on a real database (SQLite file, and PostgreSQL where configured): what batched
lookups and group-committed writes must keep from one-at-a-time ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.ingest.store import IngestStore
from services.ingest.tables import seen, sms_threads
from shared.clock import utcnow
from shared.db import create_engine, migrate
from tests.eventually import eventually

WINDOW = timedelta(hours=24)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator:
    engine = create_engine(database_url)
    await migrate(engine, "ingest")
    yield engine
    await engine.dispose()


@pytest.fixture
async def store(engine) -> AsyncIterator[IngestStore]:
    store = IngestStore(engine, ttl=timedelta(days=7), blocklist_refresh_s=0.1)
    await store.start()
    yield store
    await store.close()


async def test_concurrent_lookups_each_get_their_own_answer(store: IngestStore) -> None:
    await store.record_sms("+18175550001", "sms-a", "SM1", "e1")
    await store.remember(("email", "<m1@x.edu>", "email-b", "e2"))
    answers = await asyncio.gather(
        store.sms_state("SM1", "+18175550001", window=WINDOW),
        store.sms_state("SM2", "+18175550001", window=WINDOW),
        store.sms_state("SM3", "+18175550002", window=WINDOW),
        store.seen_conversation("email", "<m1@x.edu>"),
        store.seen_event_id("email", "<m1@x.edu>"),
        store.is_seen("email", "<m2@x.edu>"),
        store.is_seen("twilio", "<m1@x.edu>"),  # same key, other namespace
    )
    assert answers == [
        (True, False, None),
        (False, False, "sms-a"),
        (False, False, None),
        "email-b",
        "e2",
        False,
        False,
    ]


async def test_writes_in_one_batch_keep_the_order_they_were_made_in(store: IngestStore) -> None:
    phone = "+18175550003"
    # one group commit: two texts from one number, then the close of the second conversation
    await asyncio.gather(
        store.record_sms(phone, "sms-1", "SM10", "e10"),
        store.record_sms(phone, "sms-2", "SM11", "e11"),
        store.close_conversation("sms-2"),
    )
    assert await store.open_sms_thread(phone, window=WINDOW) is None
    # a text after a close, in one batch: the number's thread is open again
    await asyncio.gather(
        store.close_conversation("sms-2"), store.record_sms(phone, "sms-3", "SM12", "e12")
    )
    assert await store.open_sms_thread(phone, window=WINDOW) == "sms-3"


async def test_texts_read_back_rebuild_the_threads_a_restore_lost(
    store: IngestStore, engine
) -> None:
    """A database restored from a backup and rewound to T: the texts after T, read back from
    refdesk.interactions, set each number's thread to its latest (a crisis patron's next text
    had opened a new, ordinary conversation: an outside review), in whatever order they come;
    a text the webhook recorded already, or an older one, changes nothing, and a close read
    after its text still ends the thread."""
    now = utcnow()
    earlier = now - timedelta(minutes=30)
    await store.replay_sms(
        [
            ("+18175550031", "sms-new", now - timedelta(minutes=2)),
            ("+18175550031", "sms-old", earlier),  # an older text of the number, read later
            ("+18175550032", "sms-closed", now - timedelta(minutes=3)),
        ]
    )
    await store.close_conversation("sms-closed")
    assert await store.open_sms_thread("+18175550031", window=WINDOW) == "sms-new"
    assert await store.open_sms_thread("+18175550032", window=WINDOW) is None
    await store.replay_sms([("+18175550031", "sms-old", earlier)])  # another batch, older
    assert await store.open_sms_thread("+18175550031", window=WINDOW) == "sms-new"
    # the CARE Team's alert and an erasure read before their texts (other topics, other
    # batches): applied when the texts come, so the crisis thread outlives its close and the
    # erased number stays forgotten
    await store.mark_crisis(["sms-crisis"])
    await store.forget_conversations(["sms-erased"])
    await store.replay_sms(
        [
            ("+18175550034", "sms-crisis", now - timedelta(minutes=4)),
            ("+18175550035", "sms-erased", now - timedelta(minutes=4)),
        ]
    )
    await store.close_conversation("sms-crisis")
    assert await store.open_sms_thread("+18175550034", window=WINDOW) == "sms-crisis"
    async with engine.connect() as conn:
        erased = await conn.execute(
            select(sms_threads.c.contact).where(sms_threads.c.contact == "+18175550035")
        )
        assert erased.first() is None
    # live: the webhook records the text after the broker's ack, then the consumer reads it
    await store.record_sms("+18175550033", "sms-live", "SM30", "e30")
    await store.close_conversation("sms-live")
    await store.replay_sms([("+18175550033", "sms-live", now)])
    assert await store.open_sms_thread("+18175550033", window=WINDOW) is None


async def test_no_close_ends_a_crisis_thread(store: IngestStore, engine) -> None:
    """A text thread the CARE Team was alerted about is not ended by a close, the desk's or the
    chat platform's: the patron's next text within the reply window joins the crisis (an
    outside patron-safety review's "no" after a close reached the reference desk as a new
    conversation). The close may be written before the alert is read: the alert opens the
    thread again. The reply window still ends it, and the number's next conversation starts
    unmarked."""
    phone = "+18175550004"
    await store.record_sms(phone, "sms-crisis", "SM20", "e20")
    await store.mark_crisis(["sms-crisis"])
    await store.close_conversation("sms-crisis")
    assert await store.open_sms_thread(phone, window=WINDOW) == "sms-crisis"
    await store.record_sms(phone, "sms-crisis", "SM21", "e21")  # a text in it keeps the mark
    await store.close_conversation("sms-crisis")
    assert await store.open_sms_thread(phone, window=WINDOW) == "sms-crisis"
    async with engine.begin() as conn:  # a day and more without a text: the window lapses
        await conn.execute(
            sms_threads.update().values(last_message_at=utcnow() - WINDOW - timedelta(minutes=1))
        )
    assert await store.open_sms_thread(phone, window=WINDOW) is None

    # the number's next conversation starts without the mark: a close ends it
    await store.record_sms(phone, "sms-next", "SM22", "e22")
    await store.close_conversation("sms-next")
    assert await store.open_sms_thread(phone, window=WINDOW) is None

    # the close first, the alert after it
    await store.record_sms(phone, "sms-late", "SM23", "e23")
    await store.close_conversation("sms-late")
    await store.mark_crisis(["sms-late", "sms-not-a-thread"])
    assert await store.open_sms_thread(phone, window=WINDOW) == "sms-late"

    # an alert about a conversation the number has moved on from changes nothing
    await store.record_sms(phone, "sms-newer", "SM24", "e24")
    await store.mark_crisis(["sms-late"])
    await store.close_conversation("sms-newer")
    assert await store.open_sms_thread(phone, window=WINDOW) is None


async def test_an_erasure_forgets_the_number_of_its_thread(store: IngestStore, engine) -> None:
    await store.record_sms("+18175550005", "sms-erased", "SM30", "e30")
    await store.record_sms("+18175550006", "sms-kept", "SM31", "e31")
    await store.forget_conversations(["sms-erased", "sms-unknown"])
    async with engine.connect() as conn:
        left = (await conn.execute(select(sms_threads.c.contact))).scalars().all()
    assert left == ["+18175550006"]
    assert await store.open_sms_thread("+18175550005", window=WINDOW) is None


async def test_the_first_valid_record_of_a_key_wins(store: IngestStore, engine) -> None:
    await asyncio.gather(
        store.remember(("chat", "w1", "chat-a", None)),
        store.remember(("chat", "w1", "chat-b", None)),
    )
    assert await store.seen_conversation("chat", "w1") == "chat-a"
    await store.remember(("chat", "w1", "chat-c", None))
    assert await store.seen_conversation("chat", "w1") == "chat-a"
    async with engine.begin() as conn:  # let it expire: the next record replaces it
        await conn.execute(seen.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    assert not await store.is_seen("chat", "w1")
    await store.remember(("chat", "w1", "chat-d", None))
    assert await store.seen_conversation("chat", "w1") == "chat-d"


async def test_a_binding_lasts_the_ttl_from_its_latest_recording(
    store: IngestStore, engine
) -> None:
    await store.remember(bindings=[("email-party", "k1", "email-a")])
    async with engine.begin() as conn:  # nearly expired
        await conn.execute(seen.update().values(expires_at=utcnow() + timedelta(seconds=60)))
    await asyncio.gather(  # recorded again, twice in one batch: valid for the TTL from now
        store.remember(
            ("email", "<m9@x.edu>", "email-a", "e9"), bindings=[("email-party", "k1", "email-a")]
        ),
        store.remember(bindings=[("email-party", "k1", "email-a")]),
    )
    async with engine.connect() as conn:
        expires = (
            await conn.execute(select(seen.c.expires_at).where(seen.c.key == "k1"))
        ).scalar_one()
    assert expires > utcnow() + timedelta(days=6)
    assert await store.seen_conversation("email-party", "k1") == "email-a"
    assert await store.seen_event_id("email", "<m9@x.edu>") == "e9"


async def test_another_replica_sees_keys_at_once_and_blocks_after_a_refresh(
    store: IngestStore, engine
) -> None:
    other = IngestStore(engine, ttl=timedelta(days=7), blocklist_refresh_s=0.1)
    await other.start()
    try:
        await store.record_sms("+18175550004", "sms-x", "SM20", "e20")
        assert await other.sms_state("SM20", "+18175550004", window=WINDOW) == (True, False, None)
        await store.block("+18175550005", reason="abuse", added_by="admin")
        assert store.is_blocked("+18175550005")
        for _ in range(100):
            if other.is_blocked("+18175550005"):
                break
            await asyncio.sleep(0.05)
        assert other.is_blocked("+18175550005")
        assert await other.unblock("+18175550005")
        assert not other.is_blocked("+18175550005")
        for _ in range(100):
            if not store.is_blocked("+18175550005"):
                break
            await asyncio.sleep(0.05)
        assert not store.is_blocked("+18175550005")
    finally:
        await other.close()


async def test_a_failed_batch_fails_its_callers_and_the_store_recovers(
    store: IngestStore, engine
) -> None:
    # a row too long for PostgreSQL's varchar(32), or a type SQLite cannot bind, fails the batch
    bad = ("chat", "k", object(), None)
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error type differs by database
        await store.remember(bad)  # type: ignore[arg-type]
    await store.remember(("chat", "k2", "chat-ok", None))
    assert await store.seen_conversation("chat", "k2") == "chat-ok"


async def test_a_key_claimed_by_many_at_once_goes_to_exactly_one(store: IngestStore) -> None:
    # issue 13, finding 3: one Mailgun token sent with ten messages at the same moment
    claims = [f"event-{i}" for i in range(10)]
    holders = await asyncio.gather(*(store.claim("mailgun-token", "tok-1", e) for e in claims))
    winners = [e for e, holder in zip(claims, holders, strict=True) if holder == e]
    assert len(winners) == 1 and set(holders) == set(winners)
    # the winner's retry still holds it; a latecomer with another event does not
    assert await store.claim("mailgun-token", "tok-1", winners[0]) == winners[0]
    assert await store.claim("mailgun-token", "tok-1", "event-late") == winners[0]


async def test_an_expired_claim_can_be_claimed_again(engine) -> None:
    store = IngestStore(engine, ttl=timedelta(seconds=-1))
    await store.start()
    try:
        assert await store.claim("mailgun-token", "tok-2", "first") == "first"
        assert await store.claim("mailgun-token", "tok-2", "second") == "second"
    finally:
        await store.close()


async def test_expired_seen_keys_are_purged_at_start_and_counted(engine) -> None:
    first = IngestStore(engine, ttl=timedelta(days=7), purge_every_s=3600)
    await first.start()
    try:
        await first.remember(("chat", "old", "chat-old", None), ("chat", "new", "chat-new", None))
        async with engine.begin() as conn:
            await conn.execute(
                seen.update()
                .where(seen.c.key == "old")
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        before = REGISTRY.get_sample_value("refdesk_ingest_seen_keys_purged_total") or 0.0
        assert await first.purge_expired() == 1
        after = REGISTRY.get_sample_value("refdesk_ingest_seen_keys_purged_total")
        assert after == before + 1
        assert await first.seen_conversation("chat", "new") == "chat-new"
        async with engine.connect() as conn:
            keys = {row.key for row in await conn.execute(seen.select())}
        assert keys == {"new"}
    finally:
        await first.close()


async def test_the_purge_runs_on_its_schedule(engine) -> None:
    store = IngestStore(engine, ttl=timedelta(days=7), purge_every_s=0.05)
    await store.start()
    try:
        await store.remember(("chat", "soon", "chat-soon", None))
        async with engine.begin() as conn:
            await conn.execute(seen.update().values(expires_at=utcnow() - timedelta(seconds=1)))

        async def purged() -> bool:
            async with engine.connect() as conn:
                return (await conn.execute(seen.select())).first() is None

        await eventually(purged, "the expired key purged by the scheduled purge", timeout=10)
    finally:
        await store.close()


async def test_times_are_stored_and_read_back_as_aware_utc(store: IngestStore) -> None:
    await store.record_sms("+18175550009", "sms-z", "SM90", "e90")
    async with store.engine.connect() as conn:
        [row] = (await conn.execute(sms_threads.select())).all()
    assert row.last_message_at.tzinfo is not None
    assert abs(utcnow() - row.last_message_at) < timedelta(minutes=1)


async def test_a_text_thread_past_the_retention_is_purged(engine) -> None:
    """An outside probe: the number of every patron who ever texted stayed in sms_threads for
    good, though the README says student data is purged after REFDESK_TRANSCRIPT_RETENTION_DAYS."""
    store = IngestStore(
        engine, ttl=timedelta(days=7), purge_every_s=3600, thread_retention=timedelta(days=365)
    )
    await store.start()
    try:
        await store.record_sms("+18175550001", "sms-old", "SM01", "e01")
        await store.record_sms("+18175550002", "sms-new", "SM02", "e02")
        async with engine.begin() as conn:
            await conn.execute(
                sms_threads.update()
                .where(sms_threads.c.contact == "+18175550001")
                .values(last_message_at=utcnow() - timedelta(days=366))
            )
        before = REGISTRY.get_sample_value("refdesk_ingest_sms_threads_purged_total") or 0.0
        await store.purge_expired()
        assert REGISTRY.get_sample_value("refdesk_ingest_sms_threads_purged_total") == before + 1
        async with engine.connect() as conn:
            left = {row.contact for row in await conn.execute(sms_threads.select())}
        assert left == {"+18175550002"}
    finally:
        await store.close()


async def test_a_blocked_address_is_blocked_under_any_plus_tag(store: IngestStore) -> None:
    """A blocked eve.park@ writing as eve.park+x@ had been accepted (an outside review)."""
    await store.block("eve.park@my.tccd.edu", reason="threats", added_by="mgarcia")
    assert store.is_blocked("eve.park+x@my.tccd.edu")
    assert store.is_blocked("eve.park+a+b@my.tccd.edu")
    assert not store.is_blocked("eve.parker@my.tccd.edu")
    assert not store.is_blocked("+18175550123")
    await store.block("sam+lists@example.edu", reason="flood", added_by="mgarcia")
    assert store.is_blocked("sam+lists@example.edu") and not store.is_blocked("sam@example.edu")
