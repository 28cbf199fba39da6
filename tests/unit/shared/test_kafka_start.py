"""A service starting before its broker is reachable waits for it and says where it looks, then
gives up in one line naming the bootstrap (four services had exited a second after start with a
screen of traceback ending in KafkaConnectionError)."""

from __future__ import annotations

import logging

import pytest

from shared.kafka import BrokerUnreachable, ensure_topics_when_reachable
from shared.settings import CommonSettings

pytestmark = pytest.mark.timeout(60)


async def test_an_unreachable_broker_is_waited_for_then_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = CommonSettings(kafka_bootstrap="127.0.0.1:9")  # nothing listens on discard
    with caplog.at_level(logging.WARNING, logger="shared.kafka"):
        with pytest.raises(BrokerUnreachable) as gave_up:
            await ensure_topics_when_reachable(settings, wait_s=2.0)
    assert str(gave_up.value) == (
        "the Kafka broker at 127.0.0.1:9 (REFDESK_KAFKA_BOOTSTRAP) could not be reached for 2 s"
    )
    waited = [r for r in caplog.records if r.getMessage().startswith("broker not reachable yet")]
    assert all(getattr(r, "bootstrap", None) == "127.0.0.1:9" for r in waited)
    assert len(waited) >= 2  # it tried again and again, it did not give up at once


def test_a_service_start_that_gives_up_says_so_in_one_line_not_a_traceback() -> None:
    """A verifying probe found the one line at the bottom of a 20-frame traceback that uvicorn
    logged for the failed start."""
    import subprocess
    import sys

    script = (
        "import asyncio\n"
        "from shared.logs import configure_logging\n"
        "from shared.kafka import ensure_topics_when_reachable\n"
        "from shared.settings import CommonSettings\n"
        "configure_logging('router')\n"
        "asyncio.run(ensure_topics_when_reachable(\n"
        "    CommonSettings(kafka_bootstrap='127.0.0.1:9'), wait_s=1.0, exit_if_not=True))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    assert "the Kafka broker at 127.0.0.1:9 (REFDESK_KAFKA_BOOTSTRAP) could not be reached" in last
