"""The publisher's own Prometheus metrics (refdesk_ prefix)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PROJECTED = Counter(
    "refdesk_public_events_total", "Public events published to refdesk.public", ["type"]
)
WEBHOOK_ATTEMPTS = Counter(
    "refdesk_webhook_attempts_total", "Webhook delivery attempts, by outcome", ["outcome"]
)
WEBHOOK_DEAD = Counter(
    "refdesk_webhook_dead_total", "Webhook deliveries given up after the attempt limit"
)
WEBHOOK_PENDING = Gauge(
    "refdesk_webhook_pending", "Webhook deliveries waiting to be sent (or re-sent)"
)
PUBLIC_SKIPPED = Counter(
    "refdesk_public_skipped_total", "Messages on refdesk.public the webhook matcher could not read"
)
