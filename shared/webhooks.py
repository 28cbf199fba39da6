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
    encoded = plain.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        return f"{variable} must be a Standard Webhooks secret: whsec_ followed by base64"
    return None
