"""Property-based checks of ingest's OpenAPI document against the running app (schemathesis).

Generated requests are unsigned, so webhooks answer 401/403/415/422; what is checked is that
no answer is a 5xx and every answer (status, content type, headers, body) is documented.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.ingest.app import create_app
from tests.integration.ingest.conftest import ingest_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def ingest_app(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The app under test (one database for the module)."""
    run_dir: Path = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite+aiosqlite:///{run_dir / 'ingest.db'}"
    return create_app(ingest_settings(kafka_bootstrap, url, run_dir))


def _document() -> dict[str, Any]:
    """Ingest's OpenAPI document, from an app that is never started.

    `schemathesis.pytest.from_fixture` would load it from the fixture above, but it does not
    work with pytest 9 (it reads `request.node._nodeid`).
    """
    return create_app(ingest_settings("127.0.0.1:9", "sqlite+aiosqlite://", Path("run"))).openapi()


@schemathesis.serializer("message/rfc822")
def _rfc822(_ctx: schemathesis.SerializationContext, value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_every_answer_is_documented_and_none_is_a_server_error(
    case: schemathesis.Case, ingest_app: FastAPI
) -> None:
    # schemathesis' pytest plugin ends ASGI lifespans after every test item; entering a client
    # (re)starts the app's lifespan (migrations, broker connection) for this one.
    with asgi.get_client(ingest_app) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "ingest did not become ready"
            time.sleep(0.2)
        # /readyz answering 503 is its documented contract (a broker ping can time out on a
        # loaded machine); every other path must never give a 5xx.
        checks = CHECKS[1:] if case.path == "/readyz" else CHECKS
        case.call_and_validate(session=client, base_url=f"http://{asgi.HOST}", checks=checks)
