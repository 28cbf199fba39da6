"""A service starting before its broker is reachable waits for it and says where it looks, then
gives up in one line naming the bootstrap (four services had exited a second after start with a
screen of traceback ending in KafkaConnectionError)."""

from __future__ import annotations

import logging
import time

import pytest

from shared.kafka import BrokerUnreachable, ensure_topics_when_reachable
from shared.settings import CommonSettings

pytestmark = pytest.mark.timeout(60)


async def test_an_unreachable_broker_is_waited_for_then_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = CommonSettings(kafka_bootstrap="127.0.0.1:9")  # nothing listens on discard
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="shared.kafka"):
        with pytest.raises(BrokerUnreachable) as gave_up:
            await ensure_topics_when_reachable(settings, wait_s=2.0)
    assert str(gave_up.value) == (
        "the Kafka broker at 127.0.0.1:9 (REFDESK_KAFKA_BOOTSTRAP) could not be reached for 2 s"
    )
    waited = [r for r in caplog.records if r.getMessage().startswith("broker not reachable yet")]
    assert waited and all(getattr(r, "bootstrap", None) == "127.0.0.1:9" for r in waited)
    assert time.monotonic() - started >= 1.0  # it waited, it did not give up at once
