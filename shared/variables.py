"""Every REFDESK_* variable refdesk reads, so that a start can say which of those it was given
are nobody's: a misspelt `REFDESK_TRANSCRIPT_RETENTION_DAY=30` or `REFDESK_PUBLISHER_ADMN_TOKEN`
was ignored without a word, and student data kept 365 days instead of 30.

`SETTINGS` is written by `python -m tools.settings_table` from every service's settings class
(`tests/unit/test_readme_settings.py` checks it is current); `TOOLS` are the variables of the
command line, the tests and the benchmarks.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

# variables:begin
SETTINGS = frozenset(
    {
        "REFDESK_ADMIN_TOKEN",
        "REFDESK_BACKOFF_BASE_S",
        "REFDESK_BACKOFF_MAX_S",
        "REFDESK_BLOCKLIST_REFRESH_S",
        "REFDESK_BODY_READ_TIMEOUT_S",
        "REFDESK_CHAT_API_PREVIOUS_SECRET",
        "REFDESK_CHAT_API_SECRET",
        "REFDESK_CHAT_API_TIMEOUT_S",
        "REFDESK_CHAT_API_URL",
        "REFDESK_CONSOLE_URL",
        "REFDESK_CRISIS_MAX_ATTEMPTS",
        "REFDESK_DATABASE_URL",
        "REFDESK_DEDUPE_TTL_DAYS",
        "REFDESK_ENV",
        "REFDESK_FORWARDED_ALLOW_IPS",
        "REFDESK_HOST",
        "REFDESK_INGEST_EMAIL_BODY_READ_TIMEOUT_S",
        "REFDESK_INGEST_GROUP",
        "REFDESK_INGEST_MAX_EMAIL_BODY_BYTES",
        "REFDESK_INGEST_PORT",
        "REFDESK_INGEST_PREVIOUS_MAILGUN_SIGNING_KEY",
        "REFDESK_INGEST_PREVIOUS_TWILIO_AUTH_TOKEN",
        "REFDESK_INGEST_PREVIOUS_WEBHOOK_SECRET",
        "REFDESK_INGEST_TWILIO_SHARED_KEY",
        "REFDESK_INGEST_TWILIO_URL_FRAGMENT",
        "REFDESK_KAFKA_BOOTSTRAP",
        "REFDESK_LEASE_S",
        "REFDESK_LOG_LEVEL",
        "REFDESK_MAILGUN_SIGNING_KEY",
        "REFDESK_MAIL_FROM",
        "REFDESK_MAIL_REPLY_TO",
        "REFDESK_MAX_ATTEMPTS",
        "REFDESK_MAX_BODY_BYTES",
        "REFDESK_MESSAGE_ID_DOMAIN",
        "REFDESK_NOTIFIER_GROUP",
        "REFDESK_NOTIFIER_LANE_CONCURRENCY",
        "REFDESK_NOTIFIER_PORT",
        "REFDESK_PATIENT_BACKOFF_S",
        "REFDESK_PENDING_GAUGE_INTERVAL_S",
        "REFDESK_POLICY_FILE",
        "REFDESK_POLICY_WATCH_INTERVAL_S",
        "REFDESK_POLL_INTERVAL_S",
        "REFDESK_PORT_FILE",
        "REFDESK_PUBLIC_BASE_URL",
        "REFDESK_PUBLIC_HASH_KEY",
        "REFDESK_PUBLISHER_ADMIN_TOKEN",
        "REFDESK_PUBLISHER_DEPARTMENTS",
        "REFDESK_PUBLISHER_PORT",
        "REFDESK_PUBLISHER_PROJECTOR_GROUP",
        "REFDESK_PUBLISHER_SECRET_GRACE_H",
        "REFDESK_PUBLISHER_WEBHOOK_ALLOW_LOOPBACK",
        "REFDESK_PUBLISHER_WEBHOOK_BACKOFF_BASE_S",
        "REFDESK_PUBLISHER_WEBHOOK_BACKOFF_MAX_S",
        "REFDESK_PUBLISHER_WEBHOOK_CONCURRENCY",
        "REFDESK_PUBLISHER_WEBHOOK_GROUP",
        "REFDESK_PUBLISHER_WEBHOOK_LEASE_S",
        "REFDESK_PUBLISHER_WEBHOOK_MAX_ATTEMPTS",
        "REFDESK_PUBLISHER_WEBHOOK_POLL_INTERVAL_S",
        "REFDESK_PUBLISHER_WEBHOOK_SUBSCRIPTION_CONCURRENCY",
        "REFDESK_PUBLISHER_WEBHOOK_TIMEOUT_S",
        "REFDESK_PUBLISH_TIMEOUT_S",
        "REFDESK_RAW_RETENTION_DAYS",
        "REFDESK_RETRY_AFTER_S",
        "REFDESK_RETRY_FOR_H",
        "REFDESK_ROUTER_ADMIN_TOKEN",
        "REFDESK_ROUTER_GROUP",
        "REFDESK_ROUTER_MODEL_FILE",
        "REFDESK_ROUTER_PORT",
        "REFDESK_RUN_DIR",
        "REFDESK_SHUTDOWN_TIMEOUT_S",
        "REFDESK_SIGNATURE_TOLERANCE_S",
        "REFDESK_SMS_API_BASE_URL",
        "REFDESK_SMS_FROM",
        "REFDESK_SMS_REPLY_WINDOW_H",
        "REFDESK_SMS_STATUS_CALLBACK_URL",
        "REFDESK_SMTP_ALLOW_PLAIN",
        "REFDESK_SMTP_CA_FILE",
        "REFDESK_SMTP_HOST",
        "REFDESK_SMTP_IDLE_TIMEOUT_S",
        "REFDESK_SMTP_PASSWORD",
        "REFDESK_SMTP_PORT",
        "REFDESK_SMTP_SEND_TIMEOUT_S",
        "REFDESK_SMTP_TIMEOUT_S",
        "REFDESK_SMTP_TLS",
        "REFDESK_SMTP_UNCONFIRMED_COPIES",
        "REFDESK_SMTP_UNCONFIRMED_WAIT_S",
        "REFDESK_SMTP_USER",
        "REFDESK_SMTP_VALIDATE_CERTS",
        "REFDESK_STATUS_AUTO_ASSIGN",
        "REFDESK_STATUS_CAPACITY_PER_PERSON",
        "REFDESK_STATUS_COOKIE_SECURE",
        "REFDESK_STATUS_CRISIS_ACK_TIMEOUT_S",
        "REFDESK_STATUS_GROUP",
        "REFDESK_STATUS_HEARTBEAT_AWAY_AFTER_S",
        "REFDESK_STATUS_HEARTBEAT_OFFLINE_AFTER_S",
        "REFDESK_STATUS_PORT",
        "REFDESK_STATUS_PUBLISH_TIMEOUT_S",
        "REFDESK_STATUS_SEED_FILE",
        "REFDESK_STATUS_SESSION_MAX_AGE_S",
        "REFDESK_STATUS_SESSION_SECRET",
        "REFDESK_STATUS_SWEEP_INTERVAL_S",
        "REFDESK_STORE_TIMEOUT_S",
        "REFDESK_SURVEY_URL",
        "REFDESK_TOPIC_PARTITIONS",
        "REFDESK_TRANSCRIPT_RETENTION_DAYS",
        "REFDESK_TWILIO_ACCOUNT_SID",
        "REFDESK_TWILIO_AUTH_TOKEN",
        "REFDESK_WEBHOOK_SECRET",
    }
)
# variables:end

TOOLS = frozenset(
    {
        "REFDESK_AXE_JS",
        "REFDESK_BENCH_POSTGRES_URL",
        "REFDESK_CACHE_DIR",
        "REFDESK_RUN_DIR",
        "REFDESK_SCREENSHOTS",
        "REFDESK_TEST_POSTGRES_URL",
    }
)


def unknown(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """The REFDESK_* variables of `environ` no part of refdesk reads, each with the known one it
    most looks like (a misspelling), if any."""
    known = SETTINGS | TOOLS
    found = []
    for name in sorted(environ):
        if name.startswith("REFDESK_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            found.append((name, close[0] if close else None))
    return found


def warnings(environ: Mapping[str, str]) -> list[str]:
    """One line per unknown variable, as a start prints them."""
    return [
        f"{name} is not a refdesk setting and is ignored"
        + (f" (did you mean {close}?)" if close else "")
        for name, close in unknown(environ)
    ]
