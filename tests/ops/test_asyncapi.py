"""The committed event catalogue (docs/asyncapi/) is what the code generates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from refdesk_cli.asyncapi import CONSUMERS, DOCS, generate
from shared.events import EVENT_TYPES, PUBLIC_EVENT_TYPES
from shared.topics import TOPICS, carried_types

CONSUMES = {
    "ingest": {"refdesk.interactions", "refdesk.notifications", "refdesk.desk"},
    "router": {"refdesk.interactions", "refdesk.presence"},
    "notifier": {"refdesk.notifications", "refdesk.desk"},
    "status": {
        "refdesk.interactions",
        "refdesk.routing",
        "refdesk.notifications",
        "refdesk.deliveries",
        "refdesk.desk",
        "refdesk.sms-reports",
    },
    "publisher": {
        "refdesk.interactions",
        "refdesk.routing",
        "refdesk.presence",
        "refdesk.public",
    },
}
PUBLISHES = {
    "ingest": {"refdesk.interactions", "refdesk.sms-reports"},
    "router": {"refdesk.routing", "refdesk.notifications"},
    "notifier": {"refdesk.deliveries"},
    "status": {
        "refdesk.interactions",
        "refdesk.routing",
        "refdesk.notifications",
        "refdesk.presence",
        "refdesk.desk",
    },
    "publisher": {"refdesk.public"},
}
"""Topics each service publishes events to (an outside audit found the documents named only
what each consumes: no document said who sends refdesk.routing or refdesk.desk)."""


def test_committed_documents_match_the_code() -> None:
    generated = generate()
    for name in CONSUMERS:
        committed = (DOCS / f"{name}.yaml").read_text()
        stale = f"docs/asyncapi/{name}.yaml is stale: run `refdesk asyncapi`"
        assert committed == generated[name], stale


def addresses(doc: dict[str, Any], action: str) -> set[str]:
    """The topics of a document's operations of one action (receive or send)."""
    return {
        doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"]
        for op in doc["operations"].values()
        if op["action"] == action
    }


def test_each_document_lists_what_its_service_consumes_publishes_and_dead_letters() -> None:
    for name, text in generate().items():
        doc = yaml.safe_load(text)
        assert doc["asyncapi"].startswith("3.")

        assert addresses(doc, "receive") == CONSUMES[name], name
        dead_letters = {t.dlq_name for t in TOPICS if t.dlq and t.name in CONSUMES[name]}
        assert addresses(doc, "send") == PUBLISHES[name] | dead_letters, name
        for address in dead_letters:
            assert carried_types(address) == ("edu.tccd.refdesk.dead_letter.v1",)


def refs(node: Any) -> Iterator[str]:
    """Every $ref in a document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """What a local $ref points at, following a reference to a reference."""
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return resolve(doc, node["$ref"]) if isinstance(node, dict) and "$ref" in node else node


def publisher_doc() -> dict[str, Any]:
    return yaml.safe_load((DOCS / "publisher.yaml").read_text())


def test_every_reference_in_every_document_resolves() -> None:
    for name in CONSUMERS:
        doc = yaml.safe_load((DOCS / f"{name}.yaml").read_text())
        for ref in refs(doc):
            assert resolve(doc, ref) is not None, (name, ref)


def test_every_document_lists_each_event_type_of_each_topic_with_its_typed_data() -> None:
    """Each channel lists exactly the types shared.topics says its topic carries, each message
    names its type, and its payload's `data` is that type's own schema, never a bare object."""
    for name in CONSUMERS:
        doc = yaml.safe_load((DOCS / f"{name}.yaml").read_text())
        for key, channel in doc["channels"].items():
            messages = [resolve(doc, m["$ref"]) for m in channel["messages"].values()]
            carried = carried_types(channel["address"])
            assert [m["name"] for m in messages] == list(carried), (name, key)
            for message in messages:
                payload = resolve(doc, message["payload"]["$ref"])
                assert payload["properties"]["type"]["const"] == message["name"]
                assert "$ref" in payload["properties"]["data"], (name, message["name"])
                data = resolve(doc, payload["properties"]["data"]["$ref"])
                model = EVENT_TYPES[message["name"]]
                assert data["title"] == model.__name__
                assert data["type"] == "object"
                assert set(data["properties"]) == set(model.model_fields), (name, model)
                assert message["contentType"] == "application/cloudevents+json"
        for operation in doc["operations"].values():
            channel = resolve(doc, operation["channel"]["$ref"])
            listed = [resolve(doc, m["$ref"])["name"] for m in operation["messages"]]
            assert listed == list(carried_types(channel["address"])), name
        assert "CloudEvent" not in doc["components"]["schemas"], name  # the untyped envelope


def test_the_public_payloads_are_the_committed_json_schemas() -> None:
    """docs/schemas/<type>.json and the catalogue describe each public event alike."""
    doc = publisher_doc()
    schemas = doc["components"]["schemas"]
    folder = Path(DOCS).parent / "schemas"
    for event_type in PUBLIC_EVENT_TYPES:
        committed = json.loads((folder / f"{event_type}.json").read_text())
        for key in ("$id", "$schema"):
            committed.pop(key)
        text = json.dumps(committed).replace('"#/$defs/', '"#/components/schemas/')
        committed = json.loads(text)
        for model, definition in committed.pop("$defs", {}).items():
            assert schemas[model] == definition, model
        [message] = [m for m in doc["components"]["messages"].values() if m["name"] == event_type]
        assert resolve(doc, message["payload"]["$ref"]) == committed, event_type
