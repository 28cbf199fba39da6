"""`refdesk status`: each service's readiness, consumer lag and who is Online where."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

LAG = "refdesk_consumer_lag_messages"


@dataclass
class ServiceHealth:
    name: str
    url: str
    ready: bool | None = None
    """None: the service did not answer."""
    checks: dict[str, bool] = field(default_factory=dict)
    lag: dict[tuple[str, str], float] = field(default_factory=dict)
    error: str | None = None


def lag_of(metrics_text: str) -> dict[tuple[str, str], float]:
    """(topic, group) -> lag, from a Prometheus text exposition."""
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != LAG:
            continue
        for sample in family.samples:
            found[(sample.labels["topic"], sample.labels["group"])] = sample.value
    return found


def probe(client: httpx.Client, name: str, url: str) -> ServiceHealth:
    """Ask one service for /readyz and /metrics."""
    health = ServiceHealth(name=name, url=url)
    try:
        ready = client.get(f"{url}/readyz")
        body: Any = ready.json()
        health.ready = ready.status_code == 200
        health.checks = {k: bool(v) for k, v in (body.get("checks") or {}).items()}
        health.lag = lag_of(client.get(f"{url}/metrics").text)
    except (httpx.HTTPError, ValueError) as exc:
        health.error = type(exc).__name__
    return health


def availability(client: httpx.Client, status_url: str) -> list[dict[str, Any]] | None:
    """The status service's GET /availability departments, or None when it does not answer."""
    try:
        answer = client.get(f"{status_url}/availability")
        answer.raise_for_status()
        departments: list[dict[str, Any]] = answer.json()["departments"]
        return departments
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def collect(
    urls: dict[str, str], *, timeout: float = 3.0
) -> tuple[list[ServiceHealth], list[dict[str, Any]] | None]:
    """Health of every service and the availability board."""
    with httpx.Client(timeout=timeout) as client:
        services = [probe(client, name, url) for name, url in urls.items()]
        return services, availability(client, urls["status"]) if "status" in urls else None
