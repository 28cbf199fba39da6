"""Every time an event carries lies in the years 2000 to 2099: a year-9999 time overflowed the
first day the router and the status service added to it, and held their partitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.consumer import PoisonMessage, decode
from shared.events import Channel, InteractionReceived, Patron, new_event


def interaction(at: datetime | str) -> InteractionReceived:
    return InteractionReceived.model_validate(
        {
            "interaction_id": "i-1",
            "conversation_id": "sms-1",
            "channel": Channel.SMS,
            "provider": "twilio",
            "provider_message_id": "SM1",
            "patron": Patron(contact="+18175550123"),
            "text": "hi",
            "received_at": at,
        }
    )


@pytest.mark.parametrize(
    "at",
    [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(2099, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2026, 1, 6, 9, 30, tzinfo=timezone(timedelta(hours=-6))),
    ],
)
def test_a_time_of_this_century_is_taken_with_its_offset(at: datetime) -> None:
    assert interaction(at).received_at == at


@pytest.mark.parametrize(
    "at",
    [
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+14:00",  # before the first instant Python can hold in UTC
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "2099-12-31T23:00:00-12:00",  # 2100 in UTC
    ],
)
def test_a_time_outside_it_is_invalid_data(at: str) -> None:
    with pytest.raises(ValidationError, match="outside the years 2000 to 2099"):
        interaction(at)


def test_a_consumer_dead_letters_such_an_event_instead_of_failing_on_it() -> None:
    """An event written by something that does not check (an older producer, a hand-made
    record) is poison at decoding: it goes to the DLQ, and its partition moves on."""
    body = new_event(interaction(datetime(2026, 1, 6, tzinfo=UTC)), source="test")
    raw = body.model_dump_json().replace("2026-01-06T00:00:00Z", "9999-12-31T23:59:59Z")
    assert "9999" in raw
    with pytest.raises(PoisonMessage, match="received_at"):
        decode(raw.encode())
