"""The services' JSON log lines: aiokafka's retried coordinator lookups are warnings."""

from __future__ import annotations

import json
import logging

import pytest
from aiokafka import errors

from shared.logs import COORDINATOR_LOGGER, configure_logging


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    configure_logging("test")
    logger = logging.getLogger(COORDINATOR_LOGGER)
    logger.error("Group Coordinator Request failed: %s", errors.CoordinatorNotAvailableError())
    logger.error("Group Coordinator Request failed: %s", errors.GroupAuthorizationFailedError())
    logger.error("Heartbeat failed: %s", errors.CoordinatorNotAvailableError())
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_retried_coordinator_lookup_is_a_warning_and_a_final_one_an_error(
    lines: list[dict[str, object]],
) -> None:
    assert [line["level"] for line in lines] == ["warning", "error", "error"]
    assert all(line["logger"] == COORDINATOR_LOGGER for line in lines)


def test_configuring_twice_adds_the_filter_once() -> None:
    configure_logging("test")
    configure_logging("test")
    filters = logging.getLogger(COORDINATOR_LOGGER).filters
    assert len(filters) == 1


def test_a_redelivered_batch_is_a_warning_whoever_logs_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An outside probe's two status replicas: 37 ERROR lines "TransientFailure: IntegrityError"
    in a run that lost and doubled nothing (both wrote one new row; the batch was redone)."""
    from shared.consumer import TransientFailure

    configure_logging("test")
    kafka = logging.getLogger("refdesk.status.kafka")  # FastStream's logger for the broker
    for error in (TransientFailure("IntegrityError"), RuntimeError("boom")):
        try:
            raise error
        except Exception:
            kafka.exception("handler failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["error"]) for line in lines] == [
        ("warning", "TransientFailure"),
        ("error", "RuntimeError"),
    ]
