"""Prometheus metrics shared by every service (refdesk_ prefix, base units, _total counters)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter(
    "refdesk_events_consumed_total",
    "Events a consumer finished with, by outcome",
    ["topic", "outcome"],
)
BATCHES = Counter(
    "refdesk_consumer_batches_total",
    "Poll batches a batch consumer finished with, by outcome (processed or retried)",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "refdesk_dead_letters_total", "Messages sent to a dead-letter topic", ["topic"]
)
PUBLISHED = Counter("refdesk_events_published_total", "Events published", ["topic"])
PUBLISH_SECONDS = Histogram(
    "refdesk_publish_duration_seconds",
    "Time until the broker acknowledged a publish",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DB_UNIT_SECONDS = Histogram(
    "refdesk_db_unit_duration_seconds",
    "Units of database work on a service's database runner: the wait for the runner (the units "
    "before it) and the run (statements and commit)",
    ["runner", "phase"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_LAG = Gauge(
    "refdesk_consumer_lag_messages",
    "Messages not yet consumed, per topic and group",
    ["topic", "group"],
)
DEPENDENCY_UP = Gauge(
    "refdesk_dependency_up",
    "1 while the service can use this dependency (what /readyz checks: kafka, database), 0 "
    "while not; measured at each scrape",
    ["dependency"],
)
