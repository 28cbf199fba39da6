"""`refdesk settle-ledger` on a real broker: a restored notifier database learns from
refdesk.deliveries what was sent after the backup, so the rewound notifier sends none of it
again (docs/operations.md, restoring the notifier)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from refdesk_cli.settle import settle_ledger
from services.notifier.tables import SENT, ledger
from shared.db import create_engine, migrate
from shared.events import (
    Channel,
    DeliveryState,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Priority,
)
from shared.kafka import build_broker, ensure_topics, publish
from shared.settings import CommonSettings
from shared.topics import DELIVERIES, NOTIFICATIONS


async def test_what_was_sent_after_the_backup_is_recorded_before_the_replay(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = CommonSettings(kafka_bootstrap=kafka_bootstrap)
    await ensure_topics(settings)
    backup_time = datetime.now(UTC) - timedelta(seconds=1)
    key = f"crisis-alert-{uuid.uuid4().hex[:8]}"
    command = NotificationRequested(
        idempotency_key=key,
        kind=NotificationKind.CRISIS_ALERT,
        channel=Channel.EMAIL,
        priority=Priority.URGENT,
        recipient="careteam@tccd.edu",
        conversation_id=f"chat-{key}",
        context={"conversation_ref": f"chat-{key}", "channel": "chat"},
        requested_at=datetime.now(UTC),
    )
    done = NotificationDelivered(
        idempotency_key=key,
        conversation_id=f"chat-{key}",
        kind=NotificationKind.CRISIS_ALERT,
        channel=Channel.EMAIL,
        state=DeliveryState.SENT,
        message_id=f"<{key}@refdesk>",
        at=datetime.now(UTC),
    )
    broker = build_broker(settings, client_id="settle-test")
    await broker.start()
    try:
        await publish(
            broker,
            NOTIFICATIONS.name,
            command,
            key=command.conversation_id,
            source="refdesk/router",
        )
        await publish(
            broker, DELIVERIES.name, done, key=done.conversation_id, source="refdesk/notifier"
        )
    finally:
        await broker.stop()
    url = f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"
    engine = create_engine(url)
    try:
        await migrate(engine, "notifier")  # the restored database: it has nothing after T
        dry = await settle_ledger(kafka_bootstrap, url, backup_time, execute=False)
        assert dry.written >= 1
        async with engine.connect() as conn:
            assert (await conn.execute(select(ledger.c.idempotency_key))).first() is None
        await settle_ledger(kafka_bootstrap, url, backup_time, execute=True)
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(ledger.c.state, ledger.c.message_id).where(
                        ledger.c.idempotency_key == key
                    )
                )
            ).first()
        assert row is not None and tuple(row) == (SENT, f"<{key}@refdesk>")
    finally:
        await engine.dispose()
