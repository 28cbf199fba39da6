"""Through the broker: blocked contacts, the learned net's fields on RoutingDecided, Spanish."""

from __future__ import annotations

import uuid
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from services.router.settings import RouterSettings
from services.router.tables import processed
from shared.db import processed_among
from tests.integration.router.test_router_batches import (  # the batch tests' helpers
    committed_to_end,
    decided,
    decisions_of,
    engine,  # noqa: F401 (fixture)
    interaction,
    produce,
    record,
    running_router,
    settings,  # noqa: F401 (fixture)
    start_offsets,  # noqa: F401 (fixture)
)

BLOCKED_DROPPED = "refdesk_router_blocked_dropped_total"


def dropped() -> float:
    return REGISTRY.get_sample_value(BLOCKED_DROPPED) or 0.0


async def test_blocked_contacts_reach_the_desk_only_in_crisis_and_decisions_carry_the_nets(
    settings: RouterSettings,  # noqa: F811
    start_offsets: dict[Any, int],  # noqa: F811
    engine: AsyncEngine,  # noqa: F811
) -> None:
    bootstrap, conv = settings.kafka_bootstrap, f"c-{uuid.uuid4().hex[:12]}"
    spam = interaction("can i renew my book online", conv).model_copy(update={"blocked": True})
    crisis = interaction("I want to kill myself", conv).model_copy(update={"blocked": True})
    spanish = interaction("hola, ¿puedo renovar mi libro? vence mañana", conv)
    before = dropped()
    await produce(bootstrap, conv, [record(spam), record(crisis), record(spanish)])
    async with running_router(settings):
        found = await decisions_of(bootstrap, conv, decided(crisis, spanish))
        assert await committed_to_end(bootstrap, settings.router_group)
    by_id = {e["data"]["interaction_id"]: e["data"] for e in found}
    assert spam.interaction_id not in by_id
    assert dropped() - before == 1
    async with engine.connect() as conn:
        done = await conn.run_sync(
            processed_among, processed, "router.interactions", [spam.interaction_id]
        )
    assert done == {spam.interaction_id}, "a dropped message is recorded, not decided again"
    escalated = by_id[crisis.interaction_id]
    assert escalated["action"] == "escalate_crisis" and escalated["net"] == "rules"
    routed = by_id[spanish.interaction_id]
    assert routed["lang"] == "es" and routed["model_version"].startswith("clf-")
    assert (routed["action"], routed["department"]) == ("transfer", "nw-circulation")
    assert 0 <= routed["risk_score"] <= 1 and routed["safety_review"] is False
