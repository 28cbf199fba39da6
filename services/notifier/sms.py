"""SMS delivery: Twilio's Messages API, and a folder outbox for development.

Both senders return the provider's message id, and can say whether a message was already
created (`find_sent`), which the SMS lane asks before sending again a message whose earlier
attempt may have reached the provider (sms_delivery.py): Twilio's Messages API has no
idempotency key, so a retried create is a second text to the patron.

Failures of a send are ``UncertainSendError`` (the message may exist: read timeout, connection
lost after the request went out, HTTP 5xx, a 2xx without a SID; a 503's Retry-After is kept
and waited out), ``TransientSendError`` (it does not: refused connection, connect timeout,
408), ``RateLimited`` (429, with how long its Retry-After asks to wait),
``AuthenticationFailed`` (401, or 403 with an authentication code), ``BodyTooLong`` (error
21617) or ``PermanentSendError`` (any other 4xx, e.g. 21211 "invalid To", 21610
"unsubscribed", 21614 "not a mobile number", whose Twilio code it carries as
``provider_code``). Error text carries the HTTP status and Twilio error code, never the number,
the body or a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from services.notifier.errors import (
    AuthenticationFailed,
    BodyTooLong,
    PermanentSendError,
    RateLimited,
    SettingsRefused,
    TransientSendError,
    UncertainSendError,
)
from shared.clock import utcnow
from shared.events import derived_id

log = logging.getLogger(__name__)

TOO_LONG = 21617
"""Twilio: "The concatenated message body exceeds the 1600 character limit"."""
AUTH_CODES = frozenset({20003, 20403, 70051})
"""Twilio codes of a refused credential or account: 20003 Permission Denied (bad SID/token,
deleted key, suspended account), 20403 Forbidden (account suspended or closed), 70051
Authorization Failed."""
SETTINGS_CODES = frozenset({20404, 21212, 21606, 21659, 21660, 21703})
"""Twilio codes that refuse the notifier's own settings, not the message: 20404 the account or
messaging service in the URL not found, 21212 an invalid From number, 21606 a From number not
SMS-capable on the account, 21659 and 21660 a From number that is not the account's, 21703 a
messaging service without numbers. Every text fails alike until an operator fixes the
settings, so they wait for that (`SettingsRefused`), as refused credentials do."""
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
"""Transport failures before the request left: no message can have been created."""
LOOKUP_PAGE = 50
"""Messages read per lookup: Twilio's default page size, newest first."""
RETRY_AFTER_MAX_S = 300.0
"""The longest a 429's Retry-After is obeyed: a larger value (a proxy's misconfiguration, a
date far ahead) waits this long, so no text, a crisis text least of all, is parked for hours
on one header; a Twilio limit that lasts longer answers 429 again."""


NOT_DELIVERED = frozenset({"failed", "undelivered", "canceled"})
"""Twilio statuses of a message that will not reach the phone: a lookup finding one has not
found the text delivered (sending it again is right)."""


class LookupUnavailable(Exception):
    """The provider cannot be asked whether a message exists (no such endpoint, a credential
    that may create but not read): asking again will not help."""


class SmsSender(Protocol):
    """What the notifier's SMS lane needs from an SMS adapter."""

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str: ...

    async def find_sent(
        self,
        *,
        to: str,
        body: str,
        idempotency_key: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> str | None:
        """The id of a message to ``to`` with this body created at or after ``since`` (and not
        in ``exclude``), or None when there is none; LookupUnavailable when the provider cannot
        be asked, TransientSendError when it cannot be asked now."""
        ...


class TwilioSmsSender:
    """POSTs to ``{base_url}/2010-04-01/Accounts/{sid}/Messages.json`` with basic auth, and
    reads the same list (filtered by To and From) to find a message an earlier attempt made.
    With a ``status_callback`` URL, each message asks Twilio to report there what became of
    it (ingest's /webhooks/sms/status)."""

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        client: httpx.AsyncClient,
        *,
        status_callback: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._from = from_number
        self._client = client
        self._status_callback = {"StatusCallback": status_callback} if status_callback else {}
        self._clock = clock

    def _sender(self, to: str) -> str:
        """The desk's number on the patron's channel: a patron who wrote by WhatsApp
        (`whatsapp:+1...`) is answered from `whatsapp:<the desk's number>` (Twilio refuses a
        message between two channels)."""
        channel, colon, _ = to.partition(":")
        if not colon or ":" in self._from:
            return self._from
        return f"{channel}:{self._from}"

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        """Queue one SMS at Twilio; return its message SID."""
        try:
            response = await self._client.post(
                self._url,
                data={"To": to, "From": self._sender(to), "Body": body, **self._status_callback},
                auth=self._auth,
                # Twilio does not deduplicate on it (it is the header Twilio itself sends on its
                # webhooks; the Messages API has no idempotency key): it only names the request
                # for request recorders (the fault suite's Twilio fake counts copies by it).
                headers={"I-Twilio-Idempotency-Token": idempotency_key},
            )
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            log.warning("twilio send failed key=%s error=%s", idempotency_key, type(exc).__name__)
            if isinstance(exc, NOT_SENT):
                raise TransientSendError(f"twilio unreachable: {type(exc).__name__}") from exc
            raise UncertainSendError(f"twilio did not answer: {type(exc).__name__}") from exc
        status = response.status_code
        if status >= 300:
            error = _error_for(response, now=self._clock())
            log.warning("twilio send failed key=%s error=%s", idempotency_key, error)
            raise error
        sid = _json(response).get("sid")
        if not isinstance(sid, str) or not sid:
            # Twilio accepted something: whether it queued a message is for the next attempt
            # to find out.
            raise UncertainSendError("twilio reply without a message sid", code=status)
        log.info("twilio sent key=%s sid=%s", idempotency_key, sid)
        return sid

    async def find_sent(
        self,
        *,
        to: str,
        body: str,
        idempotency_key: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> str | None:
        """Read the newest messages from the desk's number to ``to`` and return the SID of one
        with this exact body created at or after ``since``.

        Filtered by To and From only: a DateSent filter would hide a message Twilio has queued
        but not sent yet, which has no sent date, and that is the message looked for.
        """
        try:
            response = await self._client.get(
                self._url,
                params={"To": to, "From": self._sender(to), "PageSize": str(LOOKUP_PAGE)},
                auth=self._auth,
            )
        except httpx.TransportError as exc:
            raise TransientSendError(f"twilio lookup failed: {type(exc).__name__}") from exc
        status = response.status_code
        if status == 501 or (300 <= status < 500 and status not in (408, 429)):
            # no list endpoint (404, 405, 501 Not Implemented) or a credential that may send
            # but not read (403): asking again will not help (a 401 shows again on the send)
            raise LookupUnavailable(f"twilio lookup answered http {status}")
        if status == 429:
            raise RateLimited(
                "twilio lookup rate limited",
                code=status,
                retry_after_s=retry_after(response, now=self._clock()),
            )
        if status >= 300:
            raise TransientSendError(
                "twilio lookup failed",
                code=status,
                retry_after_s=retry_after(response, now=self._clock()),
            )
        messages = _json(response).get("messages")
        if not isinstance(messages, list):
            raise LookupUnavailable("twilio lookup answered without a message list")
        wanted = _normal(body)
        for message in messages:
            if not isinstance(message, dict):
                continue
            sid, created = message.get("sid"), _date(message.get("date_created"))
            if (
                isinstance(sid, str)
                and sid not in exclude
                and message.get("status") not in NOT_DELIVERED
                and created is not None
                and created >= since
                and _normal(message.get("body")) == wanted
            ):
                log.info("twilio lookup found key=%s sid=%s", idempotency_key, sid)
                return sid
        return None


def _normal(body: object) -> str | None:
    return body.replace("\r\n", "\n").strip() if isinstance(body, str) else None


def _date(value: object) -> datetime | None:
    """An RFC 2822 date (Twilio's date_created, an HTTP date: a Retry-After, a Date header),
    aware; None when missing or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def retry_after(response: httpx.Response, *, now: datetime) -> float | None:
    """The seconds a response's Retry-After asks to wait (delay-seconds or an HTTP date, RFC
    9110), at most RETRY_AFTER_MAX_S; None when there is none or it cannot be read.

    A date is measured from the response's own Date when it has one (the server's clock, which
    the date was written by), else from ``now``."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), RETRY_AFTER_MAX_S)
    until = _date(value)
    if until is None:
        return None
    sent = _date(response.headers.get("Date", "")) or now
    return min(max(0.0, (until - sent).total_seconds()), RETRY_AFTER_MAX_S)


def _twilio_code(data: dict[str, Any]) -> int | None:
    """Twilio's error code in an error answer (its `code`), if it holds one."""
    code = data.get("code")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _error_for(
    response: httpx.Response, *, now: datetime
) -> TransientSendError | PermanentSendError:
    status = response.status_code
    twilio_code = _twilio_code(_json(response))
    reason = f"twilio http {status}" + (f" error {twilio_code}" if twilio_code else "")
    if status >= 500:  # a gateway or Twilio itself failed, perhaps after creating the message
        # a 503's Retry-After (maintenance, overload) is obeyed as a 429's is
        return UncertainSendError(reason, code=status, retry_after_s=retry_after(response, now=now))
    if status == 429:
        return RateLimited(reason, code=status, retry_after_s=retry_after(response, now=now))
    if status == 408:
        return TransientSendError(reason, code=status)
    if status == 401 or (status == 403 and (twilio_code is None or twilio_code in AUTH_CODES)):
        return AuthenticationFailed(reason, code=status)
    if twilio_code in SETTINGS_CODES or (status == 404 and twilio_code is None):
        return SettingsRefused(reason, code=status)
    if twilio_code == TOO_LONG:
        return BodyTooLong(reason, code=status, provider_code=twilio_code)
    return PermanentSendError(reason, code=status, provider_code=twilio_code)


# ---- development outbox ----------------------------------------------------------------------

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def outbox_path(folder: Path, idempotency_key: str) -> Path:
    """The file a key is written to: the key itself when filename-safe, else its SHA-256."""
    if _SAFE_NAME.fullmatch(idempotency_key):
        return folder / f"{idempotency_key}.json"
    return folder / f"{hashlib.sha256(idempotency_key.encode()).hexdigest()}.json"


def _write_once(path: Path, record: dict[str, Any]) -> str:
    if path.exists():  # the same key was delivered before: stay idempotent
        return str(json.loads(path.read_text(encoding="utf-8"))["provider_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, ensure_ascii=False, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: readers see the old state or the whole file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(record["provider_id"])


async def write_outbox(folder: Path, idempotency_key: str, fields: dict[str, Any]) -> str:
    """Write one outbox record (once per key) without blocking the loop; return its provider id."""
    record = {
        "provider_id": f"outbox-{derived_id('notifier', 'outbox', idempotency_key)}",
        "idempotency_key": idempotency_key,
        **fields,
        "written_at": datetime.now(UTC).isoformat(),
    }
    return await asyncio.to_thread(_write_once, outbox_path(folder, idempotency_key), record)


def outbox_folders(run_dir: Path) -> tuple[Path, Path]:
    """The chat outbox (the chat path today: the platform has no posting API) and the SMS one
    (development, without REFDESK_SMS_API_BASE_URL); both hold student data."""
    return run_dir / "outbox" / "chat", run_dir / "outbox" / "sms"


def purge_outboxes(folders: Sequence[Path], *, cutoff: datetime) -> int:
    """Delete outbox files last written before `cutoff` (the ledger's own retention cutoff:
    the row that keeps a key from being sent twice goes at the same time); returns how many."""
    purged = 0
    stamp = cutoff.timestamp()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < stamp:
                    path.unlink()
                    purged += 1
    return purged


def forget_outboxes(folders: Sequence[Path], idempotency_keys: Iterable[str]) -> int:
    """Delete the outbox files of these keys (their conversations were erased on the patron's
    request; the ledger rows that keep them from being sent twice stay); returns how many."""
    removed = 0
    for key in idempotency_keys:
        for folder in folders:
            path = outbox_path(folder, key)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


class OutboxSmsSender:
    """Development sender: each SMS becomes ``<folder>/<key>.json``. The files hold student data."""

    def __init__(self, folder: Path | str) -> None:
        self._folder = Path(folder)

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        """Record the SMS in the outbox; return a stable fake provider id."""
        provider_id = await write_outbox(
            self._folder, idempotency_key, {"channel": "sms", "to": to, "body": body}
        )
        log.info("sms written to outbox key=%s", idempotency_key)
        return provider_id

    async def find_sent(
        self,
        *,
        to: str,
        body: str,
        idempotency_key: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> str | None:
        """The provider id of the key's outbox file, if it was written."""
        path = outbox_path(self._folder, idempotency_key)
        if not await asyncio.to_thread(path.exists):
            return None
        record = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
        return str(record["provider_id"])
