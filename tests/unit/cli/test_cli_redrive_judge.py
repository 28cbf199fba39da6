"""How `refdesk redrive` judges a dead letter, without a broker: with the consumers' own
decoder, so what it puts back is what the installed release will apply."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from refdesk_cli.redrive import RedriveRefused, judge, origin_topic, parse_at
from shared.events import ConversationTagged, DeadLetter, new_event

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def letter_of(value: str, *, topic: str = "refdesk.desk", partition: int = 1) -> bytes:
    """A DLQ record as dead_letter_record writes it, holding `value`."""
    letter = DeadLetter(
        topic=topic,
        partition=partition,
        offset=7,
        key="c-1",
        value=value,
        reason="the handler failed on it 4 times: OperationalError",
        consumer_group="refdesk-status",
        failed_at=NOW,
    )
    return new_event(letter, source="/refdesk/status").model_dump_json().encode()


def tagged() -> str:
    data = ConversationTagged(conversation_id="c-1", staff_id="lib1", topic="citations", at=NOW)
    return new_event(data, source="/refdesk/status").model_dump_json()


def test_an_event_this_release_decodes_is_redriven() -> None:
    letter, verdict = judge(letter_of(tagged()), "refdesk.desk")
    assert verdict == "redrive" and letter is not None and letter.offset == 7


def test_an_event_of_a_type_this_release_does_not_know_stays_with_why() -> None:
    event = json.loads(tagged())
    event["type"] = "edu.tccd.refdesk.desk.renamed.v1"
    _, verdict = judge(letter_of(json.dumps(event)), "refdesk.desk")
    assert verdict.startswith("this release refuses it too (unknown event type")


def test_invalid_data_stays_and_the_reason_names_the_field_not_its_value() -> None:
    event = json.loads(tagged())
    event["data"]["read_scale"] = 9
    _, verdict = judge(letter_of(json.dumps(event)), "refdesk.desk")
    assert "read_scale" in verdict and "9" not in verdict.replace("v1", "")


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (letter_of(tagged(), topic="refdesk.routing"), "read from refdesk.routing"),
        (letter_of('{"x": "\ufffd"}'), "its bytes were not UTF-8"),
        (letter_of('{"kind": "staff_reply"}', partition=-1), "given up by the notifier"),
        (b"not a letter", "not a dead letter this release can read"),
        (
            new_event(ConversationTagged(conversation_id="c", staff_id="s", at=NOW), source="/x")
            .model_dump_json()
            .encode(),
            "not a dead letter this release can read",
        ),
    ],
)
def test_what_a_redrive_leaves_where_it_is(record: bytes, expected: str) -> None:
    _, verdict = judge(record, "refdesk.desk")
    assert verdict.startswith(expected)


def test_places_and_topics_are_read_strictly() -> None:
    assert parse_at(["2:1534", "0:0"]) == {(2, 1534), (0, 0)}
    for bad in ("2-1534", "a:1", "2:", ":3", "2:-1"):
        with pytest.raises(ValueError, match="PARTITION:OFFSET"):
            parse_at([bad])
    assert origin_topic("refdesk.interactions.dlq") == "refdesk.interactions"
    for bad in ("refdesk.interactions", ".dlq"):
        with pytest.raises(RedriveRefused):
            origin_topic(bad)
