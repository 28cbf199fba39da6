"""SMTP failure classification, one case per rule (the integration tests hit a real server)."""

from __future__ import annotations

import aiosmtplib
import pytest

from services.notifier.email_sender import classify
from services.notifier.errors import (
    AuthenticationFailed,
    PermanentSendError,
    SettingsRefused,
    TransientSendError,
)


def _refused(*codes: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(c, "no", f"r{i}@x.test") for i, c in enumerate(codes)]
    )


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (aiosmtplib.SMTPResponseException(421, "closing"), TransientSendError, 421),
        (aiosmtplib.SMTPDataError(451, "try later"), TransientSendError, 451),
        (aiosmtplib.SMTPDataError(550, "rejected"), PermanentSendError, 550),
        (aiosmtplib.SMTPSenderRefused(553, "bad sender", "s@x.test"), PermanentSendError, 553),
        (aiosmtplib.SMTPAuthenticationError(535, "bad creds"), AuthenticationFailed, 535),
        (aiosmtplib.SMTPAuthenticationError(534, "too weak"), AuthenticationFailed, 534),
        (aiosmtplib.SMTPSenderRefused(530, "auth required", "s@x.test"), AuthenticationFailed, 530),
        (aiosmtplib.SMTPResponseException(538, "encrypt first"), AuthenticationFailed, 538),
        (_refused(530, 530), AuthenticationFailed, 530),
        (aiosmtplib.SMTPAuthenticationError(454, "temp auth"), TransientSendError, 454),
        (aiosmtplib.SMTPConnectResponseError(554, "go away"), PermanentSendError, 554),
        (_refused(550), PermanentSendError, 550),
        (_refused(550, 452), TransientSendError, 452),
        (_refused(450), TransientSendError, 450),
        (aiosmtplib.SMTPConnectError("refused"), TransientSendError, None),
        (aiosmtplib.SMTPServerDisconnected("gone"), TransientSendError, None),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TransientSendError, None),
        (aiosmtplib.SMTPConnectTimeoutError("slow"), TransientSendError, None),
        (ConnectionRefusedError(111, "refused"), TransientSendError, None),
        (TimeoutError(), TransientSendError, None),
        (aiosmtplib.SMTPNotSupported("no SMTPUTF8"), PermanentSendError, None),
        # the relay does not offer what the settings require: the mail waits for an operator
        (aiosmtplib.SMTPException("STARTTLS extension not supported"), SettingsRefused, None),
    ],
)
def test_classify(exc: Exception, expected: type[Exception], code: int | None) -> None:
    error = classify(exc)
    assert type(error) is expected
    assert error.code == code
    assert "x.test" not in str(error)
