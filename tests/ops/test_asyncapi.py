"""The committed event catalogue (docs/asyncapi/) is what the code generates."""

from __future__ import annotations

import yaml

from refdesk_cli.asyncapi import CONSUMERS, DOCS, generate

EXPECTED_TOPICS = {
    "ingest": {"refdesk.interactions"},
    "router": {"refdesk.interactions", "refdesk.presence"},
    "notifier": {"refdesk.notifications", "refdesk.deliveries"},
    "status": {
        "refdesk.interactions",
        "refdesk.routing",
        "refdesk.notifications",
        "refdesk.deliveries",
        "refdesk.desk",
    },
}
PUBLISHES = {"notifier": {"refdesk.deliveries"}}
"""Topics a document declares as a publication (action send) besides what it consumes."""


def test_committed_documents_match_the_code() -> None:
    generated = generate()
    for name in CONSUMERS:
        committed = (DOCS / f"{name}.yaml").read_text()
        stale = f"docs/asyncapi/{name}.yaml is stale: run `refdesk asyncapi`"
        assert committed == generated[name], stale


def test_each_document_lists_the_topics_its_service_consumes() -> None:
    for name, text in generate().items():
        doc = yaml.safe_load(text)
        assert doc["asyncapi"].startswith("3.")
        topics = {ch["address"] for ch in doc["channels"].values()}
        assert topics == EXPECTED_TOPICS[name], name
        sent = {
            doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"]
            for op in doc["operations"].values()
            if op["action"] == "send"
        }
        assert sent == PUBLISHES.get(name, set()), name
