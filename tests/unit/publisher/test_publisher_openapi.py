"""The subscriptions API's OpenAPI document says how to authenticate, what errors come back and
what a body looks like (docs/subscribing.md's own examples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from services.publisher.admin_api import ReplayIn, SubscriptionIn, SubscriptionPatch
from services.publisher.app import create_app
from services.publisher.settings import PublisherSettings
from shared.http import PROBLEM

SCHEME = "publisherAdminToken"
OPEN = {"/healthz", "/readyz", "/metrics", "/asyncapi.yaml"}


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    """The OpenAPI document of an app that is never started."""
    settings = PublisherSettings(kafka_bootstrap="127.0.0.1:9", run_dir=tmp_path)
    return create_app(settings).openapi()


def test_the_admin_token_is_a_bearer_scheme_on_every_admin_operation(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"][SCHEME]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "REFDESK_PUBLISHER_ADMIN_TOKEN" in scheme["description"]
    paths = document["paths"]
    for path in OPEN:
        assert "security" not in paths[path]["get"], path
    admin = [(p, op) for p, ops in paths.items() if p not in OPEN for op in ops.values()]
    assert len(admin) == 9
    for path, operation in admin:
        assert operation["security"] == [{SCHEME: []}], path
        problems = operation["responses"]["401"]["content"][PROBLEM]["schema"]
        assert {"type", "title", "status", "detail"} <= set(problems["properties"]), path
        assert "422" in operation["responses"] and "application/json" not in str(
            operation["responses"]["422"]["content"]
        )


def test_one_subscription_lists_404_and_a_write_its_body_limits(document: dict[str, Any]) -> None:
    replay = document["paths"]["/subscriptions/{subscription_id}/replay"]["post"]["responses"]
    assert {"400", "401", "404", "413", "422", "503"} <= set(replay)
    assert "Retry-After" in replay["503"]["headers"]


@pytest.mark.parametrize("model", [SubscriptionIn, SubscriptionPatch, ReplayIn])
def test_request_bodies_have_examples_the_models_take(
    document: dict[str, Any], model: type[BaseModel]
) -> None:
    examples = document["components"]["schemas"][model.__name__]["examples"]
    assert examples
    for example in examples:
        model.model_validate(example)
