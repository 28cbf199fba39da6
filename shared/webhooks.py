"""Standard Webhooks signatures (https://www.standardwebhooks.com): the headers of a signed POST
(the publisher's deliveries to subscribers, the notifier's messages into a chat platform)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from shared.settings import secret_value

DEV_WEBHOOK_SECRET = "whsec_ZGV2LXJlZmRlc2std2ViaG9vay1zZWNyZXQ="  # noqa: S105 - public, dev only
"""The development Standard Webhooks secret ("dev-refdesk-webhook-secret"), refused in
production."""
PUBLISHED_SECRETS = frozenset({DEV_WEBHOOK_SECRET, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
"""Secrets anyone can read: refdesk's development one, and the Standard Webhooks
documentation's example."""
MIN_KEY_BYTES = 24


def signed_headers(
    *, secrets: Sequence[str], msg_id: str, payload: str, now: datetime, user_agent: str
) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature for a body: one `v1` (HMAC-SHA256)
    signature per secret, space-separated, as the specification allows while a secret is
    rotated (a verifier accepts the delivery if any of them matches its secret)."""
    stamp = datetime.fromtimestamp(int(now.timestamp()), UTC)
    signatures = [
        Webhook(secret).sign(msg_id=msg_id, timestamp=stamp, data=payload) for secret in secrets
    ]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": user_agent,
    }


def standard_webhooks_secret(value: SecretStr | None, *, variable: str) -> str | None:
    """Why a Standard Webhooks secret cannot sign anything (not `whsec_` and base64), or None:
    one that was not base64 started ingest, and every signed chat webhook was answered 500."""
    plain = secret_value(value)
    if plain is None:
        return None
    if not _key(plain):
        return f"{variable} must be a Standard Webhooks secret: whsec_ followed by base64"
    return None


def _key(plain: str) -> bytes:
    encoded = plain.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return b""


def weak_webhook_key(env: str, value: SecretStr | None, *, variable: str) -> str | None:
    """Why production refuses a Standard Webhooks secret that decodes (a published one, a key
    under MIN_KEY_BYTES, or one that repeats a few bytes: `whsec_` and 32 "A"s had started),
    or None. Its form is `standard_webhooks_secret`'s to check."""
    plain = secret_value(value)
    if env != "production" or plain is None or not (key := _key(plain)):
        return None
    generate = "generate one: whsec_ and base64 of 32 random bytes"
    if key in {_key(published) for published in PUBLISHED_SECRETS}:
        # the key, not the text: without whsec_ or its padding it is the same key
        return f"{variable} is a published example or development secret; {generate}"
    if len(key) < MIN_KEY_BYTES:
        return f"{variable} holds {len(key)} bytes, under {MIN_KEY_BYTES}; {generate}"
    if len(set(key)) < 8:
        return f"{variable} repeats a few bytes; {generate}"
    return None
