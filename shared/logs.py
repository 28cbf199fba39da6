"""JSON-lines logging. Never pass patron contact, names, TCC IDs or message text to a logger."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
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
        suppressed = getattr(record, "suppressed", 0)
        if suppressed:
            entry["message"] += f" ({suppressed} more like it not logged)"
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"

REPEATING = "_repeating"
"""The `extra` key that marks a refdesk warning logged on every pass of a loop while the broker
or the database is away (`extra={"error": ..., REPEATING: True}`): such a record is rate-limited
like aiokafka's. Its value is part of what makes records alike (a sweep's name keeps each
sweep's failure apart); the underscore keeps it out of the JSON line."""


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
    without loss: an ERROR read as an incident. It becomes a WARNING, marked REPEATING (with
    the database away it comes with every retry, each second per subscriber); any other error
    stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote FastStream's record of a redelivered batch (always let the record through)."""
        kind = record.exc_info[0] if record.exc_info else None
        if (
            record.levelno == logging.ERROR
            and kind is not None
            and kind.__name__ == ("TransientFailure")
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            setattr(record, REPEATING, "redelivered")
        return True


CHATTY_LOGGERS = ("aiokafka",)
"""Loggers (and their children) all of whose records are rate-limited. aiokafka logs every failed
connection and metadata refresh, about 100 ERROR lines a second per service with the broker
away ("Unable connect to node with id 1", "Unable to update metadata from [1]"); an 8-minute
outage wrote 49 MB of them."""

FASTSTREAM_LOOP_ERROR = "Kafka error occurred"
"""What FastStream's subscriber loop logs (on the broker's `refdesk.<client>.kafka` logger) every
5 s per subscriber while the broker is away; rate-limited too."""

RATE_WINDOW_S = 60.0
_MAX_KINDS = 1000  # kinds of record remembered; past it, those whose window is over are forgotten


class _Seen:
    __slots__ = ("last", "since", "suppressed")

    def __init__(self, since: float) -> None:
        self.since = since
        self.suppressed = 0
        self.last: logging.LogRecord | None = None  # the latest record dropped


_TOLD = "_told"
"""Marks the record `RateLimited.say_the_rest` writes: the filter lets it through."""


class RateLimited(logging.Filter):
    """Lets one record of a kind through per window: records alike (same logger, level and
    message template, `record.msg` before its arguments) that follow within `window_s` of the
    one logged are dropped and counted, and the next one logged after the window carries the
    count as `suppressed` (a field of its JSON line, and said in its message); when none follows
    (the outage was over within the window), `say_the_rest` writes the last one dropped with the
    count of the others. It applies only
    to the chatty third-party loggers, FastStream's loop error and refdesk records marked
    REPEATING: any other record, a failed crisis notification above all, always goes through.
    `clock` is seconds that only go forward (time.monotonic; a fake in tests)."""

    def __init__(
        self, *, window_s: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, int, str, str], _Seen] = {}
        self._lock = threading.Lock()  # records come from threads too (the database runners)

    @staticmethod
    def applies(record: logging.LogRecord) -> bool:
        """Whether a record is of a kind that repeats during an outage."""
        name = record.name
        return (
            getattr(record, REPEATING, None) is not None
            or any(name == chatty or name.startswith(chatty + ".") for chatty in CHATTY_LOGGERS)
            or (
                record.msg == FASTSTREAM_LOOP_ERROR
                and name.startswith("refdesk.")
                and name.endswith(".kafka")
            )
        )

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop a repeat within the window; let the first and the first after it through."""
        if getattr(record, _TOLD, False) or not self.applies(record):
            return True
        kind = (record.name, record.levelno, str(record.msg), str(getattr(record, REPEATING, "")))
        now = self.clock()
        with self._lock:
            seen = self._seen.get(kind)
            if seen is not None and now - seen.since < self.window_s:
                seen.suppressed += 1
                seen.last = record
                return False
            suppressed = seen.suppressed if seen is not None else 0
            self._seen[kind] = _Seen(now)
            if len(self._seen) > _MAX_KINDS:
                self._forget(now)
        if suppressed:
            record.suppressed = suppressed
        return True

    def say_the_rest(self, emit: Callable[[logging.LogRecord], object]) -> int:
        """Write, through `emit`, the repeats no record after their window has counted: the
        last one dropped, carrying the number of the others as `suppressed` (none if it was the
        only one). Called a few times a window (`configure_logging`'s teller thread); the
        number of records written."""
        now = self.clock()
        told: list[tuple[logging.LogRecord, int]] = []
        with self._lock:
            for seen in self._seen.values():
                if seen.last is not None and now - seen.since >= self.window_s:
                    told.append((seen.last, seen.suppressed - 1))
                    seen.last, seen.suppressed = None, 0
        for last, others in told:
            record = logging.makeLogRecord(last.__dict__)
            setattr(record, _TOLD, True)
            if others:
                record.suppressed = others
            emit(record)
        return len(told)

    def _forget(self, now: float) -> None:
        """Forget the kinds whose window is over (their uncounted repeats go unsaid)."""
        for kind, seen in list(self._seen.items()):
            if now - seen.since >= self.window_s:
                del self._seen[kind]


class _Teller(threading.Thread):
    """Has a RateLimited filter say, four times a window, the repeats nothing after them
    counted (`RateLimited.say_the_rest`), through the handler it filters."""

    def __init__(self, limiter: RateLimited, handler: logging.Handler) -> None:
        super().__init__(name="refdesk-log-teller", daemon=True)
        self.limiter, self.handler = limiter, handler
        self.stopped = threading.Event()

    def run(self) -> None:
        """Tell until stopped (the process's end, or logging configured again)."""
        while not self.stopped.wait(self.limiter.window_s / 4):
            self.limiter.say_the_rest(self.handler.handle)


_teller: _Teller | None = None


def configure_logging(
    service: str, level: str = "INFO", *, clock: Callable[[], float] = time.monotonic
) -> None:
    """Send every logger's records to stderr as JSON lines, records that repeat during an
    outage rate-limited (RateLimited, its untold counts said by a thread of its own; `clock`
    for tests)."""
    global _teller
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RedeliveryAsWarning())
    limiter = RateLimited(clock=clock)
    handler.addFilter(limiter)
    if _teller is not None:
        _teller.stopped.set()
    _teller = _Teller(limiter, handler)
    _teller.start()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access", "httpx", "mail.log", "faststream.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    coordinator = logging.getLogger(COORDINATOR_LOGGER)
    if not any(isinstance(f, RetriedAsWarning) for f in coordinator.filters):
        coordinator.addFilter(RetriedAsWarning())
