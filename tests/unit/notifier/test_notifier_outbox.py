"""The development outboxes: one JSON file per idempotency key, written atomically, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from services.notifier.chat import OutboxChatSender
from services.notifier.sms import OutboxSmsSender, outbox_path


async def test_sms_outbox_writes_one_file_per_key(tmp_path: Path) -> None:
    sender = OutboxSmsSender(tmp_path / "sms")
    provider_id = await sender.send(to="+18175550123", body="Hello", idempotency_key="n-1")
    record = json.loads((tmp_path / "sms" / "n-1.json").read_text())
    assert record["to"] == "+18175550123" and record["body"] == "Hello"
    assert record["provider_id"] == provider_id and record["idempotency_key"] == "n-1"
    assert [p.name for p in (tmp_path / "sms").iterdir()] == ["n-1.json"]  # no temp files left


async def test_sms_outbox_is_idempotent(tmp_path: Path) -> None:
    sender = OutboxSmsSender(tmp_path)
    first = await sender.send(to="+18175550123", body="Hello", idempotency_key="n-1")
    again = await sender.send(to="+18175550123", body="Changed", idempotency_key="n-1")
    other = await sender.send(to="+18175550123", body="Hello", idempotency_key="n-2")
    assert first == again != other
    assert json.loads((tmp_path / "n-1.json").read_text())["body"] == "Hello"


async def test_unsafe_keys_become_hashed_names(tmp_path: Path) -> None:
    key = "../../etc/passwd:survey/1"
    await OutboxSmsSender(tmp_path).send(to="+18175550123", body="x", idempotency_key=key)
    path = outbox_path(tmp_path, key)
    assert path.parent == tmp_path and len(path.stem) == 64 and path.exists()


async def test_chat_outbox(tmp_path: Path) -> None:
    sender = OutboxChatSender(tmp_path)
    provider_id = await sender.send(
        conversation_id="c-42",
        body="Someone will join.",
        idempotency_key="h-1",
        kind="handoff",
        requested_at=datetime.now(UTC),
    )
    record = json.loads((tmp_path / "h-1.json").read_text())
    assert record == record | {
        "channel": "chat",
        "conversation_id": "c-42",
        "kind": "handoff",
        "body": "Someone will join.",
        "provider_id": provider_id,
    }


async def test_outbox_files_go_with_the_ledgers_retention_and_an_erasure(tmp_path: Path) -> None:
    """The chat outbox is the chat path today: its files (the text as sent) are deleted with the
    ledger's retention cutoff, and those of an erased conversation's messages at once."""
    import os
    from datetime import timedelta

    from services.notifier.sms import forget_outboxes, outbox_folders, purge_outboxes

    chat, sms = outbox_folders(tmp_path)
    old_key, new_key, erased_key = "h-old", "h-new", "../erased:survey/1"
    for key in (old_key, new_key, erased_key):
        await OutboxChatSender(chat).send(
            conversation_id="c-1",
            body="hi",
            idempotency_key=key,
            kind="staff_reply",
            requested_at=datetime.now(UTC),
        )
    await OutboxSmsSender(sms).send(to="+18175550123", body="hi", idempotency_key=old_key)
    cutoff = datetime.now(UTC) - timedelta(days=365)
    year_and_a_day = (cutoff - timedelta(days=1)).timestamp()
    for path in (outbox_path(chat, old_key), outbox_path(sms, old_key)):
        os.utime(path, (year_and_a_day, year_and_a_day))

    assert purge_outboxes([chat, sms, tmp_path / "missing"], cutoff=cutoff) == 2
    assert forget_outboxes([chat, sms], [erased_key, "never-written"]) == 1
    assert sorted(p.name for p in chat.iterdir()) == [f"{new_key}.json"]
    assert list(sms.iterdir()) == []
