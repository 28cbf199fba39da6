"""Ingest exports the consumer lag of every topic it consumes: /metrics showed
refdesk_consumer_lag_messages for refdesk.interactions only, though ingest also reads
refdesk.notifications (an outside review)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from services.ingest import app as ingest_app
from services.ingest.settings import IngestSettings
from shared.topics import DESK, INTERACTIONS, NOTIFICATIONS


class RecordedLag:
    """A lag exporter that notes the groups it was given and measures nothing."""

    groups: dict[str, tuple[str, ...]] = {}

    def __init__(self, _bootstrap: str, groups: Mapping[str, Sequence[str]], **_kw: Any) -> None:
        RecordedLag.groups = {group: tuple(topics) for group, topics in groups.items()}

    def start(self) -> RecordedLag:
        return self

    async def stop(self) -> None:
        return None


async def test_the_lag_of_every_topic_ingest_consumes_is_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_app, "LagExporter", RecordedLag)
    settings = IngestSettings(run_dir=tmp_path, kafka_bootstrap="127.0.0.1:9")
    app = ingest_app.create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    consumed = {
        topic.name
        for subscriber in app.state.ingest.broker.subscribers
        for topic in subscriber.topics
    }
    assert consumed == {INTERACTIONS.name, NOTIFICATIONS.name, DESK.name}
    assert RecordedLag.groups == {
        settings.ingest_group: (INTERACTIONS.name, NOTIFICATIONS.name, DESK.name)
    }
