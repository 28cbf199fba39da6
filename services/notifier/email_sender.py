"""Deliver built emails over SMTP (aiosmtplib), classifying failures as transient or permanent.

Classification is by SMTP reply code: 4xx -> ``TransientSendError``, 5xx -> ``PermanentSendError``,
except the authentication replies of RFC 4954 (530 authentication required, 534 mechanism too
weak, 535 credentials invalid, 538 encryption required), which are ``AuthenticationFailed``: a
rotated or mistyped password is fixed by an operator while the mail waits, not a reason to drop
it. Network trouble (refused connection, timeout, disconnect, TLS handshake failure) is
transient: the message is fine, the environment is not. A server that lacks a required extension
(STARTTLS, AUTH) is a configuration error, ``SettingsRefused``: the mail waits for an operator,
as for refused credentials. A timeout or a lost connection after the whole message was sent is
``Unconfirmed``: the relay may have it. Exception text from aiosmtplib names no addresses.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import Any, Literal, Protocol

import aiosmtplib

from services.notifier.errors import (
    AuthenticationFailed,
    PermanentSendError,
    SettingsRefused,
    TransientSendError,
    Unconfirmed,
)
from services.notifier.mime import Email

log = logging.getLogger(__name__)

TlsMode = Literal["none", "starttls", "tls"]
_DATE = b"Date: %s\r\n"


class EmailSender(Protocol):
    """What the notifier's consumer needs from an email adapter."""

    async def send(self, mail: Email) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the SMTP relay."""

    host: str
    port: int = 587
    tls: TlsMode = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    """Connecting, the greeting, STARTTLS and AUTH."""
    send_timeout: float = 40.0
    """Each reply of the mail transaction (RFC 5321 4.5.3.2 suggests minutes; a timeout after
    the message was sent means sending it again)."""
    validate_certs: bool = True
    ca_file: str | None = None


AUTH_REPLIES = frozenset({530, 534, 535, 538})
"""RFC 4954's replies refusing the client's authentication (or requiring it)."""


_ENHANCED = re.compile(r"\s*(?P<status>[245]\.\d{1,3}\.\d{1,3})(?!\S)")
"""An enhanced status code at the start of a reply's text (RFC 3463, RFC 2034)."""


def enhanced_status(message: str | None) -> str | None:
    """The enhanced status code a reply's text starts with ("5.1.1 User unknown"), if any."""
    found = _ENHANCED.match(message or "")
    return found["status"] if found else None


def _by_code(
    code: int, reason: str, message: str | None = None
) -> TransientSendError | PermanentSendError:
    if code in AUTH_REPLIES:
        return AuthenticationFailed(reason, code=code)
    if 500 <= code < 600:
        return PermanentSendError(reason, code=code, status=enhanced_status(message))
    return TransientSendError(reason, code=code)


def classify(exc: Exception) -> TransientSendError | PermanentSendError:
    """Map an aiosmtplib (or socket) failure to the notifier's error family."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        if codes and all(c in AUTH_REPLIES for c in codes):  # a relay that wants a login first
            return AuthenticationFailed(f"all {len(codes)} recipient(s) refused", code=codes[0])
        transient = [c for c in codes if not 500 <= c < 600]
        code = transient[0] if transient else codes[0] if codes else None
        reason = f"all {len(codes)} recipient(s) refused"
        if transient or code is None:
            return TransientSendError(reason, code=code)
        status = enhanced_status(exc.recipients[0].message)
        return PermanentSendError(reason, code=code, status=status)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, f"smtp {type(exc).__name__}", exc.message)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):  # SMTPUTF8, for this message's address
        return PermanentSendError(f"the relay cannot take this message: {exc}")
    if type(exc) is aiosmtplib.SMTPException:
        # aiosmtplib raises the bare base class only for a client/server mismatch: STARTTLS or
        # AUTH required by the settings but not offered by the server (today, at least)
        return SettingsRefused(f"smtp settings do not match the server: {exc}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientSendError("smtp timeout")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | OSError):
        return TransientSendError(f"smtp connection failed: {type(exc).__name__}")
    return TransientSendError(f"smtp failure: {type(exc).__name__}")


@dataclass
class _Session:
    smtp: _Client
    idle_since: float


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, knowing whether the transaction got as far as DATA: a timeout or a
    lost connection from then on may leave the message with the relay (`Unconfirmed`). A
    timeout waiting for DATA's 354 counts too: the client cannot tell it from one after the
    message, and the difference is only how cautious the retry is."""

    data_began = False

    async def data(self, message: str | bytes, /, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_began = True
        return await super().data(message, **kwargs)


class SmtpSender:
    """Delivers over a small pool of SMTP sessions, each reused for successive messages.

    At most ``max_sessions`` sessions are open (and messages in flight) at once. A session idle
    for ``idle_timeout_s`` is closed with QUIT; one that saw any error is dropped and replaced.
    A relay may close a session while it sits idle: a message whose reused session turns out to
    be disconnected is sent once more on a fresh session before it counts as a failure.
    """

    def __init__(
        self, settings: SmtpSettings, *, max_sessions: int = 1, idle_timeout_s: float = 5.0
    ) -> None:
        self._settings = settings
        self._idle_timeout_s = idle_timeout_s
        self._slots = asyncio.Semaphore(max_sessions)
        self._idle: list[_Session] = []
        """Open sessions not in use, the most recently used last."""
        self._reaper: asyncio.TimerHandle | None = None
        self._quitting: set[asyncio.Task[None]] = set()

    def _client(self) -> _Client:
        s = self._settings
        return _Client(
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

    async def send(self, mail: Email) -> None:
        """Deliver ``mail`` (dated now if it has no Date); raise Transient- or
        PermanentSendError."""
        message_id = mail.message_id
        if not mail.dated:
            mail = replace(mail, data=_DATE % formatdate(usegmt=True).encode() + mail.data)
        try:
            async with self._slots:
                refused = await self._transact(mail)
        except Unconfirmed as exc:
            log.warning("smtp send unconfirmed message_id=%s error=%s", message_id, exc)
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:  # before ValueError: TLS errors are both
            error = classify(exc)
            log.warning("smtp send failed message_id=%s error=%s", message_id, error)
            raise error from exc
        except ValueError:  # aiosmtplib: an address it cannot put on a command line
            raise PermanentSendError("unsendable: an address fits no SMTP command") from None
        if refused:
            # Some recipients accepted it. A 4xx refusal is worth a retry (same Message-ID, so
            # clients collapse the duplicate); a 5xx one is not, and the others already have it.
            codes = sorted(code for code, _ in refused.values())
            log.warning("smtp partial refusal message_id=%s codes=%s", message_id, codes)
            if any(not 500 <= c < 600 for c in codes):
                raise TransientSendError(f"{len(codes)} recipient(s) deferred", code=codes[0])
        # the delivery logs "sent" at INFO, with the notification's key and conversation
        log.debug("smtp sent message_id=%s", message_id)

    async def _transact(self, mail: Email) -> dict[str, Any]:
        """One mail transaction on an idle session, or on a new one; a reused session the relay
        closed while idle costs a fresh one, not a failure."""
        session = self._take_idle()
        if session is not None:
            try:
                return await self._attempt(session, mail)
            except ConnectionError:  # SMTPServerDisconnected too: the relay closed it idle
                log.info(
                    "smtp session closed by the relay; sending on a new one message_id=%s",
                    mail.message_id,
                )
        return await self._attempt(_Session(self._client(), 0.0), mail, connect=True)

    async def _attempt(
        self, session: _Session, mail: Email, *, connect: bool = False
    ) -> dict[str, Any]:
        """Send on one session: kept after a success, closed or retired after anything else."""
        smtp = session.smtp
        smtp.data_began = False
        try:
            if connect:
                await smtp.connect()
            # an address that is not ASCII needs a relay that offers SMTPUTF8 (aiosmtplib
            # refuses to send it to one that does not: SMTPNotSupported, permanent)
            options = ["SMTPUTF8"] if mail.utf8 else []
            refused, _ = await smtp.sendmail(
                mail.sender,
                list(mail.recipients),
                mail.data,
                mail_options=options,
                timeout=self._settings.send_timeout,
            )
        except OSError as exc:  # a timeout, a lost connection, TLS
            smtp.close()
            if smtp.data_began:  # and not sent again at once on a fresh session (`_transact`)
                reason = f"the relay did not confirm the message: {type(exc).__name__}"
                raise Unconfirmed(reason) from exc
            raise
        except Exception:
            self._retire(session)
            raise
        except BaseException:
            smtp.close()
            raise
        self._keep(session)
        return refused

    def _take_idle(self) -> _Session | None:
        """The most recently used idle session that is still connected and not expired."""
        now = time.monotonic()
        while self._idle:
            session = self._idle.pop()
            if session.smtp.is_connected and now - session.idle_since < self._idle_timeout_s:
                return session
            self._retire(session)
        return None

    def _keep(self, session: _Session) -> None:
        session.idle_since = time.monotonic()
        self._idle.append(session)
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().call_later(self._idle_timeout_s, self._reap)

    def _reap(self) -> None:
        """Close the sessions idle for the timeout; come back for the others."""
        self._reaper = None
        now = time.monotonic()
        expired = [s for s in self._idle if now - s.idle_since >= self._idle_timeout_s]
        self._idle = [s for s in self._idle if s not in expired]
        for session in expired:
            self._retire(session)
        if self._idle:
            due = self._idle[0].idle_since + self._idle_timeout_s - now
            self._reaper = asyncio.get_running_loop().call_later(max(due, 0.01), self._reap)

    def _retire(self, session: _Session) -> None:
        """Say QUIT to a session that is still connected (in the background), or just drop it."""
        if not session.smtp.is_connected:
            session.smtp.close()
            return
        task = asyncio.get_running_loop().create_task(self._quit(session.smtp))
        self._quitting.add(task)
        task.add_done_callback(self._quitting.discard)

    async def _quit(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.quit(timeout=min(self._settings.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    async def close(self) -> None:
        """QUIT every idle session (sessions in use are the callers' to finish first)."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle, self._idle = self._idle, []
        for session in idle:
            self._retire(session)
        if self._quitting:
            await asyncio.wait(list(self._quitting))
