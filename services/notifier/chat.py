"""Chat delivery: a Standard Webhooks POST into the chat platform, or a folder outbox.

refdesk takes a chat platform's events as Standard Webhooks (ingest's `POST /webhooks/chat`);
it answers the same way. With REFDESK_CHAT_API_URL set, each message refdesk writes into a chat
(a librarian's reply, a hand-off, an after-hours acknowledgement, crisis resources) is POSTed
there, signed with REFDESK_CHAT_API_SECRET (and, while it is rotated, with
REFDESK_CHAT_API_PREVIOUS_SECRET too: one signature each, which Standard Webhooks allows):

- headers `webhook-id` (the message's idempotency key: the same on every attempt, so the
  platform posts a message once however often it is sent), `webhook-timestamp`,
  `webhook-signature` (`v1,` HMAC-SHA256, https://www.standardwebhooks.com);
- body `{"type": "chat.message", "timestamp": <when it was asked for>, "data":
  {"conversation_id", "message_id", "author": "staff" | "refdesk", "staff_id", "kind",
  "text"}}`, the shape of the platform's own `chat.message`, byte for byte the same on every
  attempt. `staff_id` names the librarian who wrote a `staff_reply` (null for refdesk's own
  messages); `kind` is one of `staff_reply`, `handoff`, `after_hours_ack`, `crisis_resources`.
  A retry waiting out a failure does not hold back the conversation's later messages, so after
  one a later message may arrive first: `timestamp` gives the order they were written in.

The platform answers 2xx once it has the message (a JSON `id` in the answer, if any, is kept
as the provider's id). 404 or 410: the chat is over, and the message is settled as not
delivered (the transcript says so; no dead letter, as for a number that texted STOP). 401 or
403: the platform refuses the signature, and messages wait for an operator (an alert pages).
429 and 503 are retried no sooner than their Retry-After, any 5xx or a lost answer under the
same `webhook-id`; any other 4xx is refused for good. Redirects are not followed: one means
the URL is wrong (an operator's fix, as a refused signature is). The error text carries the
HTTP status only, never the message.

Springshare LibAnswers, the platform the desk's procedures name, has no API for posting into a
live chat: without the URL, messages go to a folder outbox (`run/outbox/chat`) that staff
tooling, or a bridge to the platform, reads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

import httpx

from services.notifier.errors import (
    AuthenticationFailed,
    ChatEnded,
    PermanentSendError,
    RateLimited,
    SettingsRefused,
    TransientSendError,
    UncertainSendError,
)
from services.notifier.sms import NOT_SENT, retry_after, write_outbox
from shared.clock import utcnow
from shared.webhooks import signed_headers

log = logging.getLogger(__name__)

USER_AGENT = "refdesk-notifier/1"
CHAT_OVER = frozenset({404, 410})
"""The platform's answers for a chat that has ended or that it does not know."""
STAFF_KINDS = frozenset({"staff_reply"})
"""Kinds whose text a librarian wrote (`author` "staff"); refdesk wrote every other one."""


class ChatSender(Protocol):
    """What the notifier's consumer needs from a chat adapter."""

    async def send(
        self,
        *,
        conversation_id: str,
        body: str,
        idempotency_key: str,
        kind: str,
        requested_at: datetime,
        staff_id: str | None = None,
    ) -> str: ...


class OutboxChatSender:
    """Each chat message becomes ``<folder>/<key>.json``, written atomically, once per key."""

    def __init__(self, folder: Path | str) -> None:
        self._folder = Path(folder)

    async def send(
        self,
        *,
        conversation_id: str,
        body: str,
        idempotency_key: str,
        kind: str,
        requested_at: datetime,
        staff_id: str | None = None,
    ) -> str:
        """Record the chat message in the outbox; return a stable fake provider id."""
        provider_id = await write_outbox(
            self._folder,
            idempotency_key,
            {"channel": "chat", "conversation_id": conversation_id, "kind": kind, "body": body},
        )
        log.info("chat message written to outbox key=%s", idempotency_key)
        return provider_id


class WebhookChatSender:
    """POSTs each chat message to the platform's URL, Standard Webhooks signed (module doc)."""

    def __init__(
        self,
        url: str,
        secrets: Sequence[str],
        client: httpx.AsyncClient,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._secrets = list(secrets)
        self._client = client
        self._clock = clock

    async def send(
        self,
        *,
        conversation_id: str,
        body: str,
        idempotency_key: str,
        kind: str,
        requested_at: datetime,
        staff_id: str | None = None,
    ) -> str:
        """Post one message into its chat; the platform's id for it (else the key)."""
        payload = message_payload(
            conversation_id=conversation_id,
            body=body,
            idempotency_key=idempotency_key,
            kind=kind,
            requested_at=requested_at,
            staff_id=staff_id,
        )
        headers = signed_headers(
            secrets=self._secrets,
            msg_id=idempotency_key,
            payload=payload,
            now=self._clock(),
            user_agent=USER_AGENT,
        )
        try:
            response = await self._client.post(
                self._url,
                content=payload.encode(),
                headers=headers,
                follow_redirects=False,
                timeout=self._timeout_s,
            )
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            log.warning(
                "chat platform send failed key=%s error=%s", idempotency_key, type(exc).__name__
            )
            if isinstance(exc, NOT_SENT):
                raise TransientSendError(
                    f"chat platform unreachable: {type(exc).__name__}"
                ) from exc
            raise UncertainSendError(f"chat platform did not answer: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            error = _error_for(response, now=self._clock())
            log.warning("chat platform send failed key=%s error=%s", idempotency_key, error)
            raise error
        provider_id = _platform_id(response) or idempotency_key
        log.info("chat message posted key=%s", idempotency_key)
        return provider_id


def message_payload(
    *,
    conversation_id: str,
    body: str,
    idempotency_key: str,
    kind: str,
    requested_at: datetime,
    staff_id: str | None = None,
) -> str:
    """The JSON body of one message (the same bytes on every attempt)."""
    return json.dumps(
        {
            "type": "chat.message",
            "timestamp": requested_at.isoformat(),
            "data": {
                "conversation_id": conversation_id,
                "message_id": idempotency_key,
                "author": "staff" if kind in STAFF_KINDS else "refdesk",
                "staff_id": staff_id if kind in STAFF_KINDS else None,
                "kind": kind,
                "text": body,
            },
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _platform_id(response: httpx.Response) -> str | None:
    """The platform's id of the posted message, when its answer is JSON with a short `id`."""
    try:
        data = response.json()
    except ValueError:
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, str) and 0 < len(found) <= 200 else None


def _error_for(
    response: httpx.Response, *, now: datetime
) -> TransientSendError | PermanentSendError:
    status = response.status_code
    reason = f"chat platform http {status}"
    if status < 400:  # a redirect: the URL is not the platform's endpoint
        return SettingsRefused(reason + " (a redirect: check REFDESK_CHAT_API_URL)", code=status)
    if status in (429, 503):
        waited = retry_after(response, now=now)
        if status == 429:
            return RateLimited(reason, code=status, retry_after_s=waited)
        return UncertainSendError(reason, code=status, retry_after_s=waited)
    if status >= 500:  # the platform may have posted it: the retry's webhook-id is the same
        return UncertainSendError(reason, code=status)
    if status in (408, 425):
        return TransientSendError(reason, code=status)
    if status in (401, 403):
        return AuthenticationFailed(reason + " (check REFDESK_CHAT_API_SECRET)", code=status)
    if status in CHAT_OVER:
        return ChatEnded(reason + " (the chat is over)", code=status)
    return PermanentSendError(reason, code=status)
