"""Deliver built emails over SMTP (aiosmtplib), classifying failures as transient or permanent.

Classification is by SMTP reply code: 4xx -> ``TransientSendError``, 5xx -> ``PermanentSendError``.
Network trouble (refused connection, timeout, disconnect, TLS handshake failure) is transient: the
message is fine, the environment is not. A server that lacks a required extension (STARTTLS, AUTH)
is a configuration error and permanent. Exception text from aiosmtplib names no addresses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal, Protocol

import aiosmtplib

from services.notifier.errors import PermanentSendError, TransientSendError

log = logging.getLogger(__name__)

TlsMode = Literal["none", "starttls", "tls"]


class EmailSender(Protocol):
    """What the notifier's consumer needs from an email adapter."""

    async def send(self, msg: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the SMTP relay."""

    host: str
    port: int = 587
    tls: TlsMode = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    validate_certs: bool = True
    ca_file: str | None = None


def _by_code(code: int, reason: str) -> TransientSendError | PermanentSendError:
    if 500 <= code < 600:
        return PermanentSendError(reason, code=code)
    return TransientSendError(reason, code=code)


def classify(exc: Exception) -> TransientSendError | PermanentSendError:
    """Map an aiosmtplib (or socket) failure to the notifier's error family."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        transient = [c for c in codes if not 500 <= c < 600]
        code = transient[0] if transient else codes[0] if codes else None
        kind = TransientSendError if transient or code is None else PermanentSendError
        return kind(f"all {len(codes)} recipient(s) refused", code=code)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, f"smtp {type(exc).__name__}")
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is aiosmtplib.SMTPException:
        # aiosmtplib raises the bare base class only for a client/server mismatch: STARTTLS or
        # AUTH required by the settings but not offered by the server.
        return PermanentSendError(f"smtp settings do not match the server: {exc}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientSendError("smtp timeout")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | OSError):
        return TransientSendError(f"smtp connection failed: {type(exc).__name__}")
    return TransientSendError(f"smtp failure: {type(exc).__name__}")


class SmtpSender:
    """One connection per message: notifications are rare, and a fresh session never goes stale."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            timeout=s.timeout,
            use_tls=s.tls == "tls",
            start_tls=s.tls == "starttls",
            validate_certs=s.validate_certs,
            cert_bundle=s.ca_file,
        )

    async def send(self, msg: EmailMessage) -> None:
        """Deliver ``msg`` (adding a Date if missing); raise Transient- or PermanentSendError."""
        if "Date" not in msg:
            msg["Date"] = formatdate(localtime=False, usegmt=True)
        message_id = msg.get("Message-ID", "")
        try:
            async with self._client() as smtp:
                refused, _ = await smtp.send_message(msg)
        except (aiosmtplib.SMTPException, OSError) as exc:  # before ValueError: TLS errors are both
            error = classify(exc)
            log.warning("smtp send failed message_id=%s error=%s", message_id, error)
            raise error from exc
        except ValueError:  # aiosmtplib: no sender or no recipients in the headers
            raise PermanentSendError("unsendable message: no sender or no recipients") from None
        if refused:
            # Some recipients accepted it. A 4xx refusal is worth a retry (same Message-ID, so
            # clients collapse the duplicate); a 5xx one is not, and the others already have it.
            codes = sorted(code for code, _ in refused.values())
            log.warning("smtp partial refusal message_id=%s codes=%s", message_id, codes)
            if any(not 500 <= c < 600 for c in codes):
                raise TransientSendError(f"{len(codes)} recipient(s) deferred", code=codes[0])
        log.info("smtp sent message_id=%s", message_id)
