"""Schemathesis over the OpenAPI documents of router, notifier, status and publisher (ingest has
its own, stricter module), with each service's credentials, against the services running on
the session's broker: whatever the generated request, no answer is a 5xx (issue 13).

Each service runs once per module under uvicorn in a thread (its lifespan starts once), and
each operation gets a bounded number of examples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from refdesk_cli.kafka_local import free_port
from tests.servers import serving_in_thread

EXAMPLES = 12
ROUTER_TOKEN = "router-admin-token-for-schemathesis-0123456789"
PUBLISHER_TOKEN = "publisher-admin-token-for-schemathesis-0123456789"
STATUS_ADMIN = "dev-dkim-token"  # the seed's admin (development seeds tokens)


def _router(common: dict[str, Any]) -> FastAPI:
    from services.router.app import create_app
    from services.router.settings import RouterSettings

    # rules only: the learned model file may not be built on this machine
    return create_app(
        RouterSettings(**common, router_admin_token=ROUTER_TOKEN, router_model_file=None)
    )


def _notifier(common: dict[str, Any]) -> FastAPI:
    from services.notifier.app import create_app
    from services.notifier.settings import NotifierSettings

    return create_app(NotifierSettings(**common, smtp_port=free_port()))


def _status(common: dict[str, Any]) -> FastAPI:
    from services.status.app import create_app
    from services.status.settings import StatusSettings

    return create_app(StatusSettings(**common))


def _publisher(common: dict[str, Any]) -> FastAPI:
    from services.publisher.app import create_app
    from services.publisher.settings import PublisherSettings

    return create_app(PublisherSettings(**common, admin_token=PUBLISHER_TOKEN))


BUILD: dict[str, Callable[[dict[str, Any]], FastAPI]] = {
    "router": _router,
    "notifier": _notifier,
    "status": _status,
    "publisher": _publisher,
}
AUTH = {
    "router": {"Authorization": f"Bearer {ROUTER_TOKEN}"},
    "notifier": {},
    "status": {"Authorization": f"Bearer {STATUS_ADMIN}"},
    "publisher": {"Authorization": f"Bearer {PUBLISHER_TOKEN}"},
}


def _document(name: str) -> dict[str, Any]:
    """A service's OpenAPI document, from an app that is never started."""
    common = {"kafka_bootstrap": "127.0.0.1:9", "run_dir": Path("run")}
    return BUILD[name](common).openapi()


@pytest.fixture(scope="module")
def base_urls(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Every service of this module, running."""
    run_dir = tmp_path_factory.mktemp("schemathesis-all")
    common = {
        "env": "development",
        "kafka_bootstrap": kafka_bootstrap,
        "run_dir": run_dir,
        "topic_partitions": 1,
        "shutdown_timeout_s": 2.0,
    }
    with contextlib.ExitStack() as running:
        yield {
            name: running.enter_context(
                serving_in_thread(build(common), what=name, lifespan="on", timeout=90)
            )
            for name, build in BUILD.items()
        }


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _check(case: schemathesis.Case, name: str, base_urls: dict[str, str]) -> None:
    if case.path == "/readyz":
        return  # 503 while the broker ping times out is its documented answer
    case.call_and_validate(
        base_url=base_urls[name], headers=AUTH[name], checks=[not_a_server_error], timeout=30
    )


router_schema = schemathesis.openapi.from_dict(_document("router"))
notifier_schema = schemathesis.openapi.from_dict(_document("notifier"))
# the console's live event stream stays open by design: not a request and an answer
status_schema = schemathesis.openapi.from_dict(_document("status")).exclude(path="/console/events")
publisher_schema = schemathesis.openapi.from_dict(_document("publisher"))


@router_schema.parametrize()
@SETTINGS
def test_router_never_answers_5xx(case: schemathesis.Case, base_urls: dict[str, str]) -> None:
    _check(case, "router", base_urls)


@notifier_schema.parametrize()
@SETTINGS
def test_notifier_never_answers_5xx(case: schemathesis.Case, base_urls: dict[str, str]) -> None:
    _check(case, "notifier", base_urls)


@status_schema.parametrize()
@SETTINGS
def test_status_never_answers_5xx(case: schemathesis.Case, base_urls: dict[str, str]) -> None:
    _check(case, "status", base_urls)


@publisher_schema.parametrize()
@SETTINGS
def test_publisher_never_answers_5xx(case: schemathesis.Case, base_urls: dict[str, str]) -> None:
    _check(case, "publisher", base_urls)
