"""`refdesk policy explain`: the router's policy engine on one message, without Kafka.

The options are read as the router's ExplainRequest (the model POST /explain and the router's
`explain` command read too); a refused field is reported under its option's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OPTION_OF = {
    "channel": "--channel",
    "patron_role": "--role",
    "received_at": "--at",
    "online": "--online",
    "text": "the message",
}


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
    from pydantic import ValidationError

    from services.router.explain import ExplainRequest
    from services.router.policy import default_policy_path, load_policy

    fields = {"channel": channel, "text": text, "patron_role": role, "received_at": at}
    try:
        request = ExplainRequest.model_validate({**fields, "online": online})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        raise ValueError(f"{OPTION_OF.get(name, name)}: {first['msg']}") from None
    loaded = load_policy(policy or default_policy_path())
    inp, present = request.to_input(loaded)
    result: dict[str, Any] = loaded.decide(inp, online=present).model_dump(mode="json")
    return result
