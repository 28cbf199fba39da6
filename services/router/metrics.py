"""The router's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DECISIONS = Counter(
    "refdesk_routing_decisions_total",
    "Routing decisions published, by action and department",
    ["action", "department"],
)
DESK_OPEN = Gauge(
    "refdesk_desk_open", "1 while the desk is open by the current policy's desk hours, else 0"
)
POLICY_REFUSED = Gauge(
    "refdesk_router_policy_refused",
    "1 while the routing policy file was refused on its last reload (an older policy is still "
    "served), else 0",
)
BLOCKED_DROPPED = Counter(
    "refdesk_router_blocked_dropped_total",
    "Messages from blocklisted contacts dropped because no crisis net fired",
)
AUTOMATIC_RECORDED = Counter(
    "refdesk_router_automatic_recorded_total",
    "Automatic mail (automatic replies, bounces) recorded without a decision: no crisis net fired",
    ["kind"],
)
for _kind in ("auto_reply", "bounce"):
    AUTOMATIC_RECORDED.labels(kind=_kind)  # every series exists from the start
LEARNED = Counter(
    "refdesk_routing_learned_total",
    "Decisions the learned net changed: escalated, flagged for safety review, or rerouted",
    ["effect"],
)
