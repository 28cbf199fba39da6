"""tail's masking, status's lag parsing, the demo's overnight clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from refdesk_cli.demo import last_overnight, shift
from refdesk_cli.status_cmd import lag_of
from refdesk_cli.tail import MASK, describe, student_fields
from services.router.policy import default_policy_path, load_policy


def test_tail_masks_what_the_wire_contract_calls_student_data() -> None:
    fields = student_fields()
    assert {"contact", "name", "text", "recipient", "patron_contact", "extracted"} <= fields
    assert "subject" in fields  # "Ana Gomez TCC ID 2223334 overdue fine"
    event = {
        "type": "edu.tccd.refdesk.interaction.received.v1",
        "time": "t",
        "subject": "c1",
        "data": {
            "channel": "sms",
            "text": "I lost 1984",
            "subject": "Ana Gomez TCC ID 2223334 overdue fine",
            "patron": {"contact": "+18175550123", "name": None, "role": "student"},
        },
    }
    line = describe(json.dumps(event).encode(), key="c1", fields=fields)
    assert "1984" not in line and "8175550123" not in line and "2223334" not in line
    assert line.split()[2] == "c1"  # the envelope's subject, the conversation, stays
    assert MASK in line and "interaction.received.v1" in line and '"role": "student"' in line
    assert "1984" in describe(json.dumps(event).encode(), key="c1", fields=None)
    # a routing decision's matched words are the patron's (an operator's probe read "lost book
    # i lost a library book" in a tail said to mask student data)
    routed = {
        "type": "edu.tccd.refdesk.routing.decided.v1",
        "time": "t",
        "subject": "c1",
        "data": {"rules": [{"rule_id": "lost-item", "matched": ["lost book i lost a library"]}]},
    }
    line = describe(json.dumps(routed).encode(), key="c1", fields=fields)
    assert "library" not in line and "lost-item" in line


def test_tail_survives_records_that_are_not_events() -> None:
    assert "not JSON" in describe(b"\xff", key=None, fields=set())


def test_status_reads_lag_per_topic_and_group() -> None:
    text = (
        "# HELP refdesk_consumer_lag_messages lag\n"
        "# TYPE refdesk_consumer_lag_messages gauge\n"
        'refdesk_consumer_lag_messages{group="refdesk-router",topic="refdesk.interactions"}'
        " 7.0\n"
    )
    assert lag_of(text) == {("refdesk.interactions", "refdesk-router"): 7.0}


def test_the_demos_overnight_time_is_always_outside_desk_hours() -> None:
    hours = load_policy(default_policy_path()).hours
    start = datetime(2026, 1, 5, tzinfo=UTC)
    for h in range(0, 24 * 8, 5):
        now = start + timedelta(hours=h)
        night = last_overnight(now)
        assert night < now and now - night <= timedelta(days=1)
        assert not hours.is_open(night)
        assert night.astimezone(ZoneInfo("America/Chicago")).hour == 3


def test_the_demo_shift_covers_the_seeds_procedures() -> None:
    steps = shift(datetime(2026, 1, 6, 16, 0, tzinfo=UTC))
    expected = {(s.expect_action, s.expect_department) for s in steps}
    assert {
        ("transfer", "nw-circulation"),
        ("email_circulation", "circulation-managers"),
        ("transfer", "writing-center"),
        ("escalate_crisis", "care-team"),
    } <= expected
    policy = load_policy(default_policy_path())
    from services.router.policy import DecisionInput
    from shared.events import Channel, PatronRole

    for step in steps:  # what the demo expects is what the policy decides
        item = step.item
        text = item.get("text") or item.get("body") or item["data"]["text"]
        channel = Channel(item.get("data", {}).get("channel") or item["kind"])
        decision = policy.decide(
            DecisionInput(
                channel=channel,
                text=text,
                received_at=datetime(2026, 1, 6, 16, 0, tzinfo=UTC),
                patron_role=PatronRole.STUDENT,
            ),
            online=None,
        )
        assert (decision.action.value, decision.department) == (
            step.expect_action,
            step.expect_department,
        ), step.label
