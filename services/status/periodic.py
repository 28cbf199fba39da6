"""The periodic task: every REFDESK_STATUS_SWEEP_INTERVAL_S it runs each sweep (lapsed
heartbeats, crisis re-escalation, replies that have not gone out, retention purge, gauge
refresh, a SQLite checkpoint) and publishes what they return; what each sweep decides is in
sweep.py, with the clock passed in."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from services.status import metrics
from services.status.consumers import TOPICS
from services.status.conversations.retention import purge_expired
from services.status.leavers import SYSTEM, give_back_waiting, sweep_leavers
from services.status.models import PROCESSED, OutboxRecord, StatusChange
from services.status.presence import all_presence_events
from services.status.resources import REPUBLISH, Resources, publish_presence, relay
from services.status.sweep import (
    due_reescalations,
    flag_unsent_care_alerts,
    reopen_unsent,
    sweep_heartbeats,
)
from services.status.token_use import token_use_of
from shared import memory
from shared.db import checkpoint, processed_cutoff, purge_processed
from shared.events import StaffStatus
from shared.logs import REPEATING
from shared.topics import NOTIFICATIONS, retention_days_of

log = logging.getLogger(__name__)


async def republish_presence(res: Resources) -> int:
    """Publish everyone's current presence so the compacted topic converges."""
    async with res.sessions() as session:
        events = await all_presence_events(session=session)
    await publish_presence(res, events)
    res.extra.pop(REPUBLISH, None)
    return len(events)


async def tick(res: Resources) -> None:
    """One pass of every sweep. Each runs whatever another's fate: with the broker down the
    presence events could not go, and the pass stopped there (retention, the gauges and the
    unsent replies waited for the broker too)."""
    failed: list[tuple[str, Exception]] = []
    for sweep in SWEEPS:
        try:
            await sweep(res, res.clock())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failed.append((sweep.__name__.strip("_"), exc))
    if len(failed) == len(SWEEPS):
        raise failed[0][1]  # nothing worked: the database is away (run_forever logs it once)
    for name, error in failed:
        log.warning(
            "sweep failed; retrying next tick",
            extra={"sweep": name, "error": type(error).__name__, REPEATING: name},
        )


async def _outbox(res: Resources, now: datetime) -> None:
    """Publish the staff actions' events the broker had not taken (`resources.deliver`); the
    gauge says how many still wait, whatever the broker answered."""
    async with res.sessions() as session:
        try:
            await relay(res, session)
        finally:
            waiting = await session.scalar(select(func.count()).select_from(OutboxRecord))
            metrics.OUTBOX_WAITING.set(waiting or 0)


async def _presence(res: Resources, now: datetime) -> None:
    settings = res.settings
    if res.extra.get(REPUBLISH):
        await republish_presence(res)
    async with res.sessions() as session:
        events = await sweep_heartbeats(
            session=session,
            now=now,
            away_after_s=settings.heartbeat_away_after_s,
            offline_after_s=settings.heartbeat_offline_after_s,
        )
        await session.commit()
    for event in events:  # a dashboard silent too long: their waiting patrons go back (first:
        if event.status is StaffStatus.OFFLINE:  # the presence may fail to publish)
            async with res.sessions() as session:
                await give_back_waiting(res, session, SYSTEM, event.staff_id)
    await publish_presence(res, events)


async def _crises(res: Resources, now: datetime) -> None:
    async with res.sessions() as session:
        crises, alerts = await due_reescalations(
            session=session,
            now=now,
            ack_timeout_s=res.settings.crisis_ack_timeout_s,
            care_report_url=res.book.data().links["care_report_url"],
        )
        # publish before stamping: the idempotency keys make a repeat after a crash harmless
        for alert in alerts:
            await res.publisher(NOTIFICATIONS.name, alert, key=alert.conversation_id)
        for conv in crises:
            conv.reescalated_at = now
            conv.reescalations += 1
        await session.commit()
        if crises:
            log.warning("re-escalated unacknowledged crises", extra={"count": len(crises)})


async def _unsent(res: Resources, now: datetime) -> None:
    async with res.sessions() as session:
        await reopen_unsent(session=session, now=now)
        await flag_unsent_care_alerts(session=session, now=now)
        await session.commit()


async def _retention(res: Resources, now: datetime) -> None:
    async with res.sessions() as session:
        await purge_expired(
            session=session, now=now, retention_days=res.settings.transcript_retention_days
        )
        await session.commit()
    # processed ids of events no topic the consumer reads can still hold (a batch per tick)
    days = retention_days_of(TOPICS, raw_retention_days=res.settings.raw_retention_days)
    before = processed_cutoff(now, retention_days=days)
    async with res.sessions() as session:
        await session.run_sync(
            lambda sync: purge_processed(sync.connection(), PROCESSED, before=before)
        )
        await session.commit()


PRESENCE_HISTORY = timedelta(days=365)
"""How long `status_history` keeps each staff presence change (who went Online, Away or
Offline, and when: staff data, for a year's staffing questions); it had grown without end."""
HISTORY_PURGED = "history_purged_at"


async def _presence_history(res: Resources, now: datetime) -> None:
    """Once an hour, delete the presence changes older than PRESENCE_HISTORY."""
    last = res.extra.get(HISTORY_PURGED)
    if isinstance(last, datetime) and now - last < timedelta(hours=1):
        return
    async with res.sessions() as session:
        await session.execute(
            delete(StatusChange).where(StatusChange.changed_at < now - PRESENCE_HISTORY)
        )
        await session.commit()
    res.extra[HISTORY_PURGED] = now


HEAP_TRIMMED = "heap_trimmed_at"
HEAP_TRIM_EVERY = timedelta(minutes=5)


async def _heap(res: Resources, now: datetime) -> None:
    """Every HEAP_TRIM_EVERY, give the C heap's free pages back to the system
    (`shared.memory`: a replica's resident memory had grown with every patron message)."""
    last = res.extra.get(HEAP_TRIMMED)
    if isinstance(last, datetime) and now - last < HEAP_TRIM_EVERY:
        return
    # a full collection first: the Kafka records of a batch wait in reference cycles for the
    # rare full pass (about 1,300 of them before one, an outside review), and memory they hold
    # is not free for the trim (about 0.1 s)
    gc.collect()
    # off the event loop: walking the heap's arenas took tens of milliseconds (ctypes lets the
    # other threads run while it does)
    await asyncio.to_thread(memory.trim)
    res.extra[HEAP_TRIMMED] = now


async def _housekeeping(res: Resources, now: datetime) -> None:
    async with res.sessions() as session:
        await token_use_of(res.extra).flush(session)
    async with res.sessions() as session:
        await checkpoint(session)
    async with res.sessions() as session:
        await metrics.refresh(session=session, now=now)


SWEEPS: tuple[Callable[[Resources, datetime], Awaitable[None]], ...] = (
    _outbox,
    _presence,
    _crises,
    _unsent,
    _retention,
    _presence_history,
    sweep_leavers,
    _housekeeping,
    _heap,
)


async def run_forever(res: Resources) -> None:
    """Run `tick` every sweep_interval_s until cancelled."""
    while True:
        try:
            await tick(res)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # the broker or database is down: the next tick is the retry
            log.warning(
                "sweep failed; retrying next tick",
                extra={"error": type(exc).__name__, REPEATING: True},
            )
        await asyncio.sleep(res.settings.sweep_interval_s)
