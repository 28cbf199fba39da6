"""Standard Webhooks signatures (https://www.standardwebhooks.com): the headers of a delivery."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

USER_AGENT = "refdesk-publisher/1"


def signed_headers(*, secret: str, msg_id: str, payload: str, now: datetime) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (v1, HMAC-SHA256) for a body."""
    stamp = datetime.fromtimestamp(int(now.timestamp()), UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=stamp, data=payload),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
