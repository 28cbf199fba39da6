"""Standard Webhooks signatures (https://www.standardwebhooks.com): the headers of a delivery."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

USER_AGENT = "refdesk-publisher/1"


def signed_headers(
    *, secrets: Sequence[str], msg_id: str, payload: str, now: datetime
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
        "user-agent": USER_AGENT,
    }
