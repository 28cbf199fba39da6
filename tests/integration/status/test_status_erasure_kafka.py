"""An erasure on a patron's request against a real broker: the admin's erasure is on
refdesk.desk before the answer, and a status service rebuilt from the topics (a fresh
database, a consumer group from before the conversation) keeps the conversation erased."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from status_kafka_helpers import send, status_settings, wait_for_record

from services.status.app import create_app
from services.status.consumers import TOPICS
from shared.events import Action, Channel, InteractionReceived, Patron, Priority, RoutingDecided
from shared.topics import DESK, INTERACTIONS, ROUTING
from tests.eventually import eventually
from tests.kafka_helpers import start_groups_at_end
from tests.servers import serving

pytestmark = pytest.mark.timeout(240)
ADMIN = {"Authorization": "Bearer dev-dkim-token"}
CONTACT = "+18175550166"


async def test_an_erasure_survives_a_rebuild_from_the_topics(
    status_kafka: str, status_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rebuild_group = f"test-status-rebuild-{uuid.uuid4().hex[:10]}"
    await start_groups_at_end(status_kafka, rebuild_group, list(TOPICS))  # before it all
    cid = f"conv-{uuid.uuid4()}"
    now = datetime.now(UTC)
    await send(
        status_kafka,
        INTERACTIONS.name,
        InteractionReceived(
            interaction_id=f"i-{cid}",
            conversation_id=cid,
            channel=Channel.SMS,
            provider="twilio",
            provider_message_id=f"SM-{cid}",
            patron=Patron(contact=CONTACT),
            text="please delete everything you have on me after this: my TCC ID is 0123456",
            received_at=now,
        ),
        key=cid,
    )
    await send(
        status_kafka,
        ROUTING.name,
        RoutingDecided(
            decision_id=f"d-{cid}",
            interaction_id=f"i-{cid}",
            conversation_id=cid,
            channel=Channel.SMS,
            action=Action.ANSWER,
            department="reference",
            priority=Priority.NORMAL,
            overnight=False,
            policy_version="test",
            decided_at=now,
        ),
        key=cid,
    )
    async with httpx.AsyncClient(base_url=status_server, headers=ADMIN) as client:

        async def listed() -> bool:
            answer = await client.get(f"/conversations/{cid}")
            return answer.status_code == 200 and answer.json()["department"] == "reference"

        await eventually(listed, f"{cid} routed")
        assert (await client.post(f"/queue/{cid}/close")).status_code == 200
        erased = await client.post(
            "/admin/records/erase",
            json={"contact": CONTACT, "reason": "erasure request 2026-009", "confirm": True},
        )
        assert erased.status_code == 200, erased.text
        assert erased.json()["erased"] == [cid]
        record, key = await wait_for_record(
            status_kafka,
            DESK.name,
            lambda v, _k: (
                v["type"] == "edu.tccd.refdesk.desk.erased.v1"
                and v["data"]["conversation_id"] == cid
            ),
        )
        assert key == cid and "0123456" not in str(record) and CONTACT not in str(record)
        view = (await client.get(f"/conversations/{cid}")).json()
        assert (view["purged"], view["messages"]) == (True, [])

    run_dir = tmp_path_factory.mktemp("status-rebuilt")
    settings = status_settings(status_kafka, rebuild_group, run_dir)
    async with (
        serving(create_app(settings), what="a rebuilt status service", lifespan="on") as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as client,
    ):

        async def rebuilt() -> dict[str, object] | None:
            answer = await client.get(f"/conversations/{cid}")
            if answer.status_code != 200:
                return None
            view = answer.json()
            return view if view["state"] == "closed" else None

        view = await eventually(rebuilt, f"{cid} rebuilt, closed")
        assert (view["purged"], view["messages"]) == (True, [])
        assert view["patron"] == {"name": None, "contact": None, "texted_from": None}
        found = await client.post(
            "/admin/records", json={"contact": CONTACT, "reason": "check after the rebuild"}
        )
        assert found.json()["conversations"] == []
