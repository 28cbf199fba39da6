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


def test_a_value_added_to_an_enumeration_still_validates_and_specversion_is_required() -> None:
    """The versioning rule lets a new enum value come without a new type version; a subscriber
    validating against the committed schemas (an operator's probe did) refused one, since the
    enums were closed. And a CloudEvent without `specversion` is none."""
    import jsonschema_rs

    from shared.events import Action, Channel, PublicConversationRouted, new_event

    event_type = "edu.tccd.refdesk.public.conversation.routed.v1"
    schema = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8"))
    validator = jsonschema_rs.validator_for(schema)
    data = PublicConversationRouted(
        conversation_hash="ab" * 32,
        channel=Channel.SMS,
        action=Action.TRANSFER,
        department="writing-center",
        priority="normal",
        overnight=False,
        decided_at="2026-12-06T15:00:00Z",
    )
    event = new_event(data, source="refdesk/publisher").model_dump(mode="json")
    assert validator.is_valid(event)
    later = {**event, "data": {**event["data"], "action": "refer_advising", "channel": "whatsapp"}}
    assert validator.is_valid(later)
    assert schema["$defs"]["Action"]["examples"] == [a.value for a in Action]
    assert not validator.is_valid({k: v for k, v in event.items() if k != "specversion"})
