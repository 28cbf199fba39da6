"""The notifier's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.events import Channel, NotificationKind

SENT = Counter("refdesk_notifications_sent_total", "Notifications delivered", ["kind", "channel"])
FAILURES = Counter(
    "refdesk_notification_failures_total", "Failed delivery attempts", ["kind", "channel", "reason"]
)
RETRIES = Counter("refdesk_notification_retries_total", "Retries scheduled", ["kind", "channel"])
DLQ = Counter(
    "refdesk_notifications_dead_lettered_total", "Notifications dead-lettered", ["kind", "channel"]
)
CRISIS_FAILURES = Counter(
    "refdesk_crisis_notification_failures_total", "Failed attempts to deliver a crisis notification"
)
LATENCY = Histogram(
    "refdesk_notification_send_duration_seconds",
    "Time to hand a notification to the relay or API",
    ["kind", "channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OLDEST_PENDING = Gauge(
    "refdesk_notification_oldest_pending_age_seconds", "Age of the oldest notification not yet sent"
)
AUTH_FAILURES = Counter(
    "refdesk_notification_auth_failures_total",
    "Attempts the relay or provider refused for the notifier's credentials (retried, not given up)",
    ["channel"],
)
# The series the alerts read with increase() exist at 0 from the start: a counter's first
# sample at 1 is no increase, so the first dead letter or refused login would go unnoticed.
for _channel in Channel:
    AUTH_FAILURES.labels(channel=_channel.value)
    for _kind in NotificationKind:
        DLQ.labels(kind=_kind.value, channel=_channel.value)
SMS_LOOKUPS = Counter(
    "refdesk_sms_lookups_total",
    "Looks at the SMS provider for a message an earlier attempt may have created",
    ["result"],
)
LEDGER_PURGED = Counter(
    "refdesk_notifier_ledger_purged_total",
    "Send-ledger rows past the retention (REFDESK_TRANSCRIPT_RETENTION_DAYS) deleted, with the "
    "patron's contact and the text as sent",
)
LEDGER_ERASED = Counter(
    "refdesk_notifier_ledger_erased_total",
    "Send-ledger rows blanked because an admin erased their conversation on the patron's "
    "request (refdesk.desk's desk.erased): the recipient and the text as sent go, the row stays",
)
OUTBOX_PURGED = Counter(
    "refdesk_notifier_outbox_purged_total",
    "Chat and SMS outbox files (the text as sent) deleted past the ledger's retention cutoff",
)
