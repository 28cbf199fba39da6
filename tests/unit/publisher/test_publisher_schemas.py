"""The committed JSON Schemas in docs/schemas match the public event models."""

from __future__ import annotations

import json

from services.publisher.schemas import SCHEMA_DIR, render, schema_for
from shared.events import EVENT_TYPES, PUBLIC_EVENT_TYPES, TYPE_OF


def test_committed_schemas_match_the_code() -> None:
    committed = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert committed == {f"{t}.json" for t in PUBLIC_EVENT_TYPES}, (
        "run: python -m services.publisher.schemas"
    )
    for event_type in PUBLIC_EVENT_TYPES:
        text = (SCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8")
        assert text == render(event_type), f"{event_type}: run python -m services.publisher.schemas"


def test_public_types_are_versioned_and_registered() -> None:
    for event_type, model in PUBLIC_EVENT_TYPES.items():
        assert event_type.startswith("edu.tccd.refdesk.public.") and event_type[-3:-1] == ".v"
        assert EVENT_TYPES[event_type] is model and TYPE_OF[model] == event_type
        schema = schema_for(event_type)
        assert schema["properties"]["type"]["const"] == event_type
        data_def = json.dumps(schema["$defs"][model.__name__])
        assert '"additionalProperties": false' not in data_def  # additive changes allowed
