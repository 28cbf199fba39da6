"""Provider errors carry the HTTP status a route answers with and the offending field."""

from __future__ import annotations

import pytest

from services.ingest.providers.errors import (
    InvalidField,
    InvalidSignature,
    MissingSignature,
    ProviderError,
    ReplayedToken,
    StaleTimestamp,
    UnknownEventType,
    UnsupportedMedia,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidSignature("X-Twilio-Signature", "no match"), 403),
        (MissingSignature("X-Twilio-Signature", "missing"), 401),
        (StaleTimestamp("timestamp", "old"), 403),
        (ReplayedToken("token", "seen"), 403),
        (InvalidField("From", "not a phone number"), 422),
        (UnknownEventType("type", "unknown"), 422),
        (UnsupportedMedia("body", "no text part"), 415),
    ],
)
def test_status_and_field(error: ProviderError, status: int) -> None:
    assert error.status == status
    assert error.field
    assert error.field in str(error)


def test_stale_and_replayed_are_signature_failures() -> None:
    assert issubclass(StaleTimestamp, InvalidSignature)
    assert issubclass(ReplayedToken, InvalidSignature)
    assert issubclass(UnknownEventType, InvalidField)
