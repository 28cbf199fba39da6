"""`refdesk policy explain`: the router's two nets (rules and learned model) on one message,
without Kafka.

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
    model: Path | None = None,
    rules_only: bool = False,
) -> dict[str, Any]:
    """The decision (as JSON data) for one message; ValueError naming a bad option."""
    from pydantic import ValidationError

    from services.router import routing
    from services.router.explain import ExplainRequest
    from services.router.learned import default_model_path, load_model
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
    learned = None if rules_only else load_model(model or default_model_path())
    decision = routing.decide(loaded, learned, inp, online=present)
    result: dict[str, Any] = decision.model_dump(mode="json")
    return result
