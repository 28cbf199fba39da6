"""JSON Schemas of the public events (docs/schemas/*.json), generated from the models.

`python -m services.publisher.schemas` rewrites the committed files; a test checks they
match the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.asyncapi import envelope_schema
from shared.events import PUBLIC_EVENT_TYPES

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
BASE_ID = "https://refdesk.tccd.edu/schemas/"


def schema_for(event_type: str) -> dict[str, Any]:
    """The JSON Schema of a whole public CloudEvent (envelope and data) of one type (its
    enumerations open, `shared.asyncapi.envelope_schema`)."""
    if event_type not in PUBLIC_EVENT_TYPES:
        raise KeyError(event_type)
    schema = envelope_schema(event_type)
    schema["$id"] = f"{BASE_ID}{event_type}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def render(event_type: str) -> str:
    """A schema as the committed file holds it."""
    return json.dumps(schema_for(event_type), indent=2, sort_keys=True) + "\n"


def write(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Write every public event's schema; the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in sorted(PUBLIC_EVENT_TYPES):
        path = folder / f"{event_type}.json"
        path.write_text(render(event_type), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(path)
