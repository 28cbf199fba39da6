"""Ingest's OpenAPI document says what the webhooks take: the Mailgun route in both form
encodings Mailgun posts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.http import PROBLEM


def _document(tmp_path: Path) -> dict[str, Any]:
    """The OpenAPI document of an app that is never started."""
    return create_app(IngestSettings(kafka_bootstrap="127.0.0.1:9", run_dir=tmp_path)).openapi()


def test_the_email_route_takes_multipart_beside_urlencoded(tmp_path: Path) -> None:
    email = _document(tmp_path)["paths"]["/webhooks/email"]["post"]
    content = email["requestBody"]["content"]
    assert set(content) == {"application/x-www-form-urlencoded", "multipart/form-data"}
    files = content["multipart/form-data"]["schema"]["properties"]
    assert files["attachment-1"]["format"] == "binary"
    assert {"timestamp", "token", "signature"} <= set(files)
    assert "REFDESK_INGEST_EMAIL_BODY_READ_TIMEOUT_S" in email["responses"]["408"]["description"]
    assert email["responses"]["413"]["content"][PROBLEM]["schema"]["required"] == [
        "type",
        "title",
        "status",
    ]
