"""Desk statistics: a per-conversation projection without patron data, reports over it (JSON,
CSV, the annual ACRL/IPEDS figure) and the supervisors' reports page.

The status handlers call `observe` after each event's effect and apply `on_tagged` to the
queue's row for a tag edit."""

from services.status.stats.projection import observe
from services.status.stats.tags import on_tagged

__all__ = ["observe", "on_tagged"]
