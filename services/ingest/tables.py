"""Ingest's tables, shared by every replica: seen provider ids, SMS threads, the blocklist."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, MetaData, String, Table, false

from shared.db import UTCDateTime

metadata = MetaData()

seen = Table(
    "seen_keys",
    metadata,
    Column("namespace", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("conversation_id", String(128), nullable=True),
    Column("event_id", String(64), nullable=True),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

sms_threads = Table(
    "sms_threads",
    metadata,
    Column("contact", String(32), primary_key=True),
    Column("conversation_id", String(128), nullable=False),
    Column("last_message_at", UTCDateTime, nullable=False),
    Column("closed", Boolean, nullable=False, default=False),
    # the CARE Team was alerted about this conversation: no close ends the thread, so the
    # patron's next text within the reply window joins the crisis (IngestStore.mark_crisis)
    Column("crisis", Boolean, nullable=False, default=False, server_default=false()),
)

thread_marks = Table(
    "sms_thread_marks",
    metadata,
    # a CARE Team alert or an erasure of a conversation, applied to its thread when a text of it
    # is read back after the mark (a rewind reads the topics in no common order)
    Column("conversation_id", String(128), primary_key=True),
    Column("crisis", Boolean, nullable=False, default=False, server_default=false()),
    Column("forgotten", Boolean, nullable=False, default=False, server_default=false()),
    Column("marked_at", UTCDateTime, nullable=False, index=True),
)

blocklist = Table(
    "blocked_contacts",
    metadata,
    Column("contact", String(255), primary_key=True),
    Column("reason", String(255), nullable=True),
    Column("added_by", String(64), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
)
