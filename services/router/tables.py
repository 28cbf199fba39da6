"""The router's own tables: which interactions it has already decided."""

from __future__ import annotations

from sqlalchemy import MetaData

from shared.db import processed_table

metadata = MetaData()
processed = processed_table(metadata, "router_processed_events")
