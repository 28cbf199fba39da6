"""The development outboxes: one JSON file per idempotency key, written atomically, once."""

from __future__ import annotations

import json
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
        conversation_id="c-42", body="Someone will join.", idempotency_key="h-1"
    )
    record = json.loads((tmp_path / "h-1.json").read_text())
    assert record == record | {
        "channel": "chat",
        "conversation_id": "c-42",
        "body": "Someone will join.",
        "provider_id": provider_id,
    }
