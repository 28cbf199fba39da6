"""JSON-lines logging. Never pass patron contact, names, TCC IDs or message text to a logger."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, service and any extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as one JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"


class RetriedAsWarning(logging.Filter):
    """aiokafka logs a failed group-coordinator lookup as an ERROR and then retries it when the
    error is retriable: every consumer does so while the broker is still electing the offsets
    topic's leaders (a fresh cluster, a broker restart). Those records become WARNINGs; one
    aiokafka gives up on stays an ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a retried lookup's record (always let the record through)."""
        if record.levelno == logging.ERROR and record.msg == "Group Coordinator Request failed: %s":
            error = record.args[0] if isinstance(record.args, tuple) and record.args else None
            if getattr(error, "retriable", False):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class RedeliveryAsWarning(logging.Filter):
    """A consumer's batch that failed for now is redelivered (shared.consumer's Guard logs a
    WARNING saying so, with the topic and the error's type); FastStream then logs the
    `TransientFailure` it was handed as an ERROR. Two status replicas writing one new row at
    once (events of one conversation on partitions the two hold) is such a failure, redone
    without loss: an ERROR read as an incident. It becomes a WARNING; any other error stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote FastStream's record of a redelivered batch (always let the record through)."""
        kind = record.exc_info[0] if record.exc_info else None
        if (
            record.levelno == logging.ERROR
            and kind is not None
            and kind.__name__ == ("TransientFailure")
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RedeliveryAsWarning())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access", "httpx", "mail.log", "faststream.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    coordinator = logging.getLogger(COORDINATOR_LOGGER)
    if not any(isinstance(f, RetriedAsWarning) for f in coordinator.filters):
        coordinator.addFilter(RetriedAsWarning())
