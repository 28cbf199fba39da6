"""Ingest's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REQUESTS = Counter(
    "refdesk_webhook_requests_total",
    "Webhook requests by channel and outcome",
    ["channel", "outcome"],
)
DUPLICATES = Counter(
    "refdesk_webhook_duplicates_total",
    "Redelivered webhooks answered without a new event",
    ["channel"],
)
BLOCKED = Counter(
    "refdesk_webhook_blocked_total",
    "Messages from blocked contacts, acknowledged and dropped",
    ["channel"],
)
SEEN_KEYS_PURGED = Counter(
    "refdesk_ingest_seen_keys_purged_total",
    "Expired provider ids and tokens deleted from the seen-keys table",
)
SMS_THREADS_PURGED = Counter(
    "refdesk_ingest_sms_threads_purged_total",
    "Numbers' text threads deleted past the retention (REFDESK_TRANSCRIPT_RETENTION_DAYS)",
)
SIGNATURE_FAILURES = Counter(
    "refdesk_webhook_signature_failures_total",
    "Webhooks refused for a missing, wrong or stale signature",
    ["channel"],
)
PREVIOUS_SECRET_ACCEPTED = Counter(
    "refdesk_ingest_previous_secret_accepted_total",
    "Webhooks whose signature only the previous secret of a rotation verified (REFDESK_INGEST_"
    "PREVIOUS_*): none for a day, the provider signs with the new one and the previous can go",
    ["secret"],
)
PREVIOUS_SECRET_SET = Gauge(
    "refdesk_ingest_previous_secret_set",
    "1 while a previous secret of a rotation is still set and accepted (REFDESK_INGEST_PREVIOUS_*)",
    ["secret"],
)
SENDER_FAILED = Counter(
    "refdesk_ingest_emails_sender_failed_total",
    "Emails whose sender failed the receiving mail system's checks (DMARC, or SPF without DKIM),"
    " or whose From does not name one sender plainly, accepted in a conversation of their own",
)
AUTOMATIC = Counter(
    "refdesk_ingest_emails_automatic_total",
    "Emails a mail system sent, not a person: auto_reply (out-of-office and other automatic"
    " answers) and bounce (delivery status reports); recorded, never answered",
    ["kind"],
)
BOUNCES = Counter(
    "refdesk_ingest_emails_bounced_total",
    "Delivery failure reports about emails refdesk sent, by whom the email was for (patron,"
    " staff, care_team; unknown: not matched to one) and the report's action (failed, delayed)",
    ["to", "action"],
)
for _kind in ("auto_reply", "bounce"):
    AUTOMATIC.labels(kind=_kind)  # every series exists from the start, for increase()
for _to in ("patron", "staff", "care_team", "unknown"):
    for _action in ("failed", "delayed"):
        BOUNCES.labels(to=_to, action=_action)
SMS_REPORT_STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "other")
"""The label values of SMS_REPORTS_BY_STATUS: Twilio's words for a text on its way and at its
end; any other word (accepted, scheduled, read, a new one) counts as `other`."""
SMS_REPORTS_BY_STATUS = Counter(
    "refdesk_ingest_sms_reports_total",
    "Twilio status callbacks for texts refdesk sent, by status",
    ["status"],
)
for _status in SMS_REPORT_STATUSES:
    SMS_REPORTS_BY_STATUS.labels(status=_status)  # every series exists from the start, for rate()
