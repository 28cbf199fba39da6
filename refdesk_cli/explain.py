"""`refdesk policy explain`: the router's policy engine on one message, without Kafka."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.events import Channel, PatronRole


def explain(
    text: str,
    *,
    channel: str = "chat",
    role: str = "unknown",
    at: str | None = None,
    online: list[str] | None = None,
    policy: Path | None = None,
) -> dict[str, Any]:
    """The decision (as JSON data) for one message; ValueError naming a bad option."""
    from services.router.policy import DecisionInput, default_policy_path, load_policy

    try:
        ch = Channel(channel)
    except ValueError:
        names = ", ".join(c.value for c in Channel)
        raise ValueError(f"--channel must be one of {names}") from None
    try:
        patron_role = PatronRole(role)
    except ValueError:
        raise ValueError("--role must be student, faculty or unknown") from None
    loaded = load_policy(policy or default_policy_path())
    try:
        when = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError:
        raise ValueError("--at must be an ISO 8601 datetime") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=loaded.hours.tz)  # a naive time is desk time
    inp = DecisionInput(channel=ch, text=text, received_at=when, patron_role=patron_role)
    decision = loaded.decide(inp, online=frozenset(online) if online is not None else None)
    result: dict[str, Any] = decision.model_dump(mode="json")
    return result
