"""The topic registry says which event types travel on which topic (shared.topics), and every
AsyncAPI document is typed from it: a registered type no topic lists, or a topic it does not
know, fails here."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from faststream.kafka import KafkaBroker

from shared.asyncapi import document
from shared.events import EVENT_TYPES, PUBLIC_EVENT_TYPES, TYPE_OF, DeadLetter, PresenceChanged
from shared.topics import NOTIFICATIONS, PRESENCE, PUBLIC, TOPICS, carried_types

DEAD_LETTER = TYPE_OF[DeadLetter]


def test_every_registered_type_travels_on_a_listed_topic() -> None:
    listed = {event_type for topic in TOPICS for event_type in topic.event_types}
    unlisted = set(EVENT_TYPES) - listed - {DEAD_LETTER}
    assert not unlisted, f"add these to a topic's `carries` in shared/topics.py: {unlisted}"


def test_a_topic_lists_registered_types_once_and_dead_letters_only_on_dlqs() -> None:
    for topic in TOPICS:
        assert topic.carries, topic.name
        unregistered = [model.__name__ for model in topic.carries if model not in TYPE_OF]
        assert not unregistered, (topic.name, unregistered)
        assert len(set(topic.event_types)) == len(topic.event_types), topic.name
        assert DEAD_LETTER not in topic.event_types, topic.name
        if topic.dlq:
            assert carried_types(topic.dlq_name) == (DEAD_LETTER,)


def test_only_the_public_topic_carries_public_types() -> None:
    for topic in TOPICS:
        public = set(topic.event_types) & set(PUBLIC_EVENT_TYPES)
        assert public == (set(PUBLIC_EVENT_TYPES) if topic is PUBLIC else set()), topic.name


def test_a_topic_refdesk_does_not_have_carries_nothing() -> None:
    with pytest.raises(KeyError):
        carried_types("refdesk.elsewhere")
    with pytest.raises(KeyError):
        carried_types("refdesk.public.dlq")  # the public topic has no dead-letter queue


async def _handler(_msg: Any) -> None:
    return None


def test_a_document_names_each_type_of_its_topic_with_its_data_schema() -> None:
    broker = KafkaBroker("127.0.0.1:1")
    broker.subscriber("refdesk.desk", group_id="g")(_handler)
    doc = yaml.safe_load(document(broker, service="test"))
    [channel] = [c for c in doc["channels"].values() if c["address"] == "refdesk.desk"]
    messages = doc["components"]["messages"]
    assert [messages[name]["name"] for name in channel["messages"]] == list(
        carried_types("refdesk.desk")
    )
    schemas = doc["components"]["schemas"]
    for message in messages.values():
        envelope = schemas[message["payload"]["$ref"].rsplit("/", 1)[-1]]
        assert envelope["properties"]["type"]["const"] == message["name"]
        data = schemas[envelope["properties"]["data"]["$ref"].rsplit("/", 1)[-1]]
        assert set(data["properties"]) == set(EVENT_TYPES[message["name"]].model_fields)
    assert "CloudEvent" not in schemas  # no generic envelope (data: object) is left


def test_a_document_refuses_a_topic_the_registry_does_not_list() -> None:
    broker = KafkaBroker("127.0.0.1:1")
    broker.subscriber("refdesk.elsewhere", group_id="g")(_handler)
    with pytest.raises(ValueError, match=r"refdesk\.elsewhere"):
        document(broker, service="test")


async def test_the_component_tiers_fake_broker_refuses_a_type_its_topic_does_not_carry() -> None:
    """Every component test's publishes go through FakeBroker (or status's FakePublisher), which
    checks them against the map: code publishing an unlisted type fails its own tests."""
    from tests.fakes import FakeBroker

    broker = FakeBroker()
    presence = {"type": TYPE_OF[PresenceChanged], "data": {}}
    with pytest.raises(AssertionError, match="does not carry it"):
        await broker.publish(
            json.dumps(presence).encode(),
            topic=NOTIFICATIONS.name,
            key=b"k",
            headers={},
            no_confirm=False,
        )
    await broker.publish(
        json.dumps(presence).encode(),
        topic=PRESENCE.name,
        key=b"k",
        headers={},
        no_confirm=False,
    )
    assert broker.on(PRESENCE.name) == [presence]
