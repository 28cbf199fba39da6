"""The router's own tables: which interactions it has already decided, and what it has done in
each open conversation (`conversations.py`)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, true

from shared.db import processed_table

metadata = MetaData()
processed = processed_table(metadata, "router_processed_events")
conversations = Table(
    "router_conversations",
    metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("routed_at", DateTime(timezone=True), nullable=False),
    Column("crisis", Boolean, nullable=False),
    Column("circulation_emailed", Boolean, nullable=False),
    Column("closed", Boolean, nullable=False),
    Column("asked", Boolean, nullable=False, server_default=true()),
    Column("last_close", String(64), nullable=True),
    Column("circulation_key", String(128), nullable=True),
    Column("crisis_alerted_at", DateTime(timezone=True), nullable=True),
    Column("review_alerted_at", DateTime(timezone=True), nullable=True),
    Column("circulation_named", String(64), nullable=True),
    Column("last_message_at", DateTime(timezone=True), nullable=True),
)
"""one row per conversation the router has routed: its first decision's time, whether a crisis
was escalated in it and the circulation managers emailed, whether it has been closed since, and
whether the patron wrote anything but text keywords (HELP, HOURS...), and the latest close
applied (its `closed_at`, UTC ISO 8601: the opening after it is named by it), and the key of
the circulation managers' first email about it (its follow-ups thread under it); when the
CARE Team and the desk were last alerted about it, and a digest of what the circulation
managers' last email named (a flood of one patron's messages alerts and emails once in a while,
not once a message), and the patron's latest message it decided (a close older than it is
stale)"""
