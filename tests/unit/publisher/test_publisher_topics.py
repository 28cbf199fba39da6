"""Retention of raw topics follows REFDESK_RAW_RETENTION_DAYS; the public one is fixed."""

from __future__ import annotations

import pytest

from shared.topics import DAY_MS, INTERACTIONS, PUBLIC, ROUTING, topic_configs


@pytest.mark.parametrize("days", [1, 3, 7])
def test_raw_topics_use_the_configured_retention(days: int) -> None:
    for topic in (INTERACTIONS, ROUTING):
        assert topic_configs(topic, raw_retention_days=days)["retention.ms"] == str(days * DAY_MS)
    assert not PUBLIC.carries_patron_data
    assert topic_configs(PUBLIC, raw_retention_days=days)["retention.ms"] == str(365 * DAY_MS)


@pytest.mark.parametrize("days", [1, 7])
def test_segments_roll_daily_so_a_record_outlives_its_retention_by_a_day_at_most(days: int) -> None:
    """Kafka's default roll of 7 days kept a quiet desk's patron data up to twice the
    retention: deletion takes whole closed segments."""
    for topic in (INTERACTIONS, ROUTING, PUBLIC):
        assert topic_configs(topic, raw_retention_days=days)["segment.ms"] == str(DAY_MS)
