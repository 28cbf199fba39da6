"""The send ledger: one row per idempotency key, holding the notification's state."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    false,
    literal,
)

from shared.db import UTCDateTime
from shared.events import Priority

metadata = MetaData()

PENDING, SENT, DEAD = "pending", "sent", "dead"

ledger = Table(
    "send_ledger",
    metadata,
    Column("idempotency_key", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("priority", String(8), nullable=False),
    # 0 urgent, 1 high, 2 normal (PRIORITY_RANK): the claim's order, which an index can serve
    Column("priority_rank", SmallInteger, nullable=False, default=2),
    Column("conversation_id", String(128), nullable=False),
    Column("command", JSON, nullable=False),
    Column("state", String(8), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("message_id", String(255), nullable=True),
    Column("provider_id", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    # The outcome, as announced on refdesk.deliveries (an outbox: announced after it is
    # recorded here, and announced again until `outcome_published` says it was).
    Column("finished_at", UTCDateTime, nullable=True),
    Column("reason", String(64), nullable=True),
    Column("delivered_text", Text, nullable=True),
    Column("subject", Text, nullable=True),
    Column("segments", Integer, nullable=True),
    Column("outcome_published", Boolean, nullable=False, default=False),
    # When the current (or last) lease was taken; a lease that ran out without an outcome
    # makes the attempt it covered in doubt from then (migration 0006).
    Column("claimed_at", UTCDateTime, nullable=True),
    # An earlier attempt may have reached the provider, starting at this time: an SMS is
    # looked up before it is sent again (sms_delivery.py). Null when nothing is in doubt.
    Column("in_doubt_since", UTCDateTime, nullable=True),
    # An SMS sent in parts: how far the text got, the parts' SIDs, the part budget
    # (sms_delivery.Progress). Null for a message sent whole.
    Column("progress", JSON, nullable=True),
    # An SMS: HMAC-SHA256 of the recipient's number under the ledger's own key (recipients.py),
    # so a lookup excludes every text attributed to that number, whatever the conversation,
    # without a second copy of the number. Null on other channels, and on SMS rows too old for
    # any lookup when migration 0007 ran.
    Column("recipient_hash", String(64), nullable=True),
    # A retry waiting out the provider's rate limit (an HTTP 429, its Retry-After): not due
    # before this time, even when a success on the lane pulls the other retries forward
    # (ledger_outcomes.py). Null for every other row (migration 0008).
    Column("not_before", UTCDateTime, nullable=True),
    # A dead row: the provider's code for refusing the message (Twilio's error code, e.g.
    # 21610), announced with the outcome so the desk can say why (migration 0008).
    Column("error_code", Integer, nullable=True),
    # a lane's claim reads due rows in this order and stops at its limit (migration 0003)
    Index(
        "ix_send_ledger_claim",
        "channel",
        "state",
        "priority_rank",
        "next_attempt_at",
        "created_at",
    ),
)
# Predicates of the partial indexes below, written with the value inline (not a bound
# parameter) so that a query using the same expression is seen to match its index, by SQLite and
# by a generic PostgreSQL plan alike.
IS_PENDING = ledger.c.state == literal(PENDING, literal_execute=True)
"""Waiting to be sent (or sent again)."""
UNANNOUNCED = and_(
    ledger.c.outcome_published == false(),
    ledger.c.state != literal(PENDING, literal_execute=True),
)
"""Final, and its outcome not yet announced on refdesk.deliveries."""

# Indexes led by `state` or `outcome_published` misled SQLite's planner, without table
# statistics, into serving `idempotency_key IN (...) AND state = 'pending'` (the claim's lease)
# from them: every pending row read per claim, not the few keys (migrations 0004, 0005).

# the oldest pending row, for the gauge
Index(
    "ix_send_ledger_pending",
    ledger.c.created_at,
    sqlite_where=IS_PENDING,
    postgresql_where=IS_PENDING,
)
# a lane's sweep for outcomes whose announcement was lost, oldest first
Index(
    "ix_send_ledger_unannounced",
    ledger.c.channel,
    ledger.c.finished_at,
    sqlite_where=UNANNOUNCED,
    postgresql_where=UNANNOUNCED,
)

# the texts attributed to one number, for a lookup of a text in doubt (SMS rows only)
HAS_RECIPIENT_HASH = ledger.c.recipient_hash.is_not(None)
Index(
    "ix_send_ledger_recipient",
    ledger.c.recipient_hash,
    sqlite_where=HAS_RECIPIENT_HASH,
    postgresql_where=HAS_RECIPIENT_HASH,
)

# an erasure finds a patron's conversations' rows (it had read the whole ledger: 215 ms at
# 600,000 rows, an outside review)
Index("ix_send_ledger_conversation", ledger.c.conversation_id)

sms_consent = Table(
    "sms_consent",
    metadata,
    # the order changes were recorded in, whatever the replicas' clocks say: the latest decides
    Column("id", Integer, primary_key=True, autoincrement=True),
    # the command that recorded the change: a replayed STOP or START is dropped by its key
    Column("idempotency_key", String(128), nullable=False, unique=True),
    # the number's keyed hash, as the ledger's SMS rows keep it (recipients.py): never the number
    Column("recipient_hash", String(64), nullable=False),
    Column("opted_out", Boolean, nullable=False),
    # an opt-out's one confirmation text still sent (the policy's STOP reply), if any
    Column("confirmation_key", String(128), nullable=True),
    Column("conversation_id", String(128), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    # the number's latest change decides (consent.py, migration 0009)
    Index("ix_sms_consent_recipient", "recipient_hash", "id"),
)
"""A number's opt-outs (STOP) and opt-ins (START), in the order recorded: the latest decides
whether a text to it is sent."""

ledger_keys = Table(
    "ledger_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("secret", String(64), nullable=False),
)
"""Keys the notifier generates for itself and keeps with the ledger (recipients.py)."""

PRIORITY_RANK: dict[Priority, int] = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2}
"""A priority's place in the claim order."""
