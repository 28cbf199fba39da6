"""SMS delivery: Twilio's Messages API, and a folder outbox for development.

Both senders return the provider's message id. Failures are ``TransientSendError`` (HTTP 5xx or
429, network errors, timeouts) or ``PermanentSendError`` (any other 4xx, e.g. Twilio 21211
"invalid To"). Error text carries the HTTP status and Twilio error code, never the number or body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from services.notifier.errors import PermanentSendError, TransientSendError
from shared.events import derived_id

log = logging.getLogger(__name__)


class SmsSender(Protocol):
    """What the notifier's consumer needs from an SMS adapter."""

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str: ...


class TwilioSmsSender:
    """POSTs to ``{base_url}/2010-04-01/Accounts/{sid}/Messages.json`` with basic auth."""

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        client: httpx.AsyncClient,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._from = from_number
        self._client = client

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        """Queue one SMS at Twilio; return its message SID."""
        try:
            response = await self._client.post(
                self._url,
                data={"To": to, "From": self._from, "Body": body},
                auth=self._auth,
                headers={"I-Twilio-Idempotency-Token": idempotency_key},
            )
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            log.warning("twilio send failed key=%s error=%s", idempotency_key, type(exc).__name__)
            raise TransientSendError(f"twilio unreachable: {type(exc).__name__}") from exc
        status = response.status_code
        if status >= 300:
            error = _error_for(status, _json(response))
            log.warning("twilio send failed key=%s error=%s", idempotency_key, error)
            raise error
        sid = _json(response).get("sid")
        if not isinstance(sid, str) or not sid:
            # Twilio accepted something; retrying under the same idempotency token is the safe move.
            raise TransientSendError("twilio reply without a message sid", code=status)
        log.info("twilio sent key=%s sid=%s", idempotency_key, sid)
        return sid


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_for(status: int, data: dict[str, Any]) -> TransientSendError | PermanentSendError:
    twilio_code = data.get("code")
    reason = f"twilio http {status}" + (f" error {twilio_code}" if twilio_code else "")
    if status >= 500 or status in (408, 429):
        return TransientSendError(reason, code=status)
    return PermanentSendError(reason, code=status)


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
