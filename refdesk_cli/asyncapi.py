"""`refdesk asyncapi`: write (or check) docs/asyncapi/<service>.yaml from the services' code.

Each consuming service's broker is built with its subscribers, exactly as its create_app
registers them, with default settings (so the server address is the default bootstrap),
and FastStream renders the AsyncAPI 3.0 document. Nothing connects to Kafka.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker

from shared.asyncapi import document

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "asyncapi"
CONSUMERS = ("ingest", "router", "notifier", "status", "publisher")


def broker_of(service: str, run_dir: Path) -> KafkaBroker:
    """The service's broker with its subscribers registered (built, not started)."""
    env: dict[str, Any] = {"run_dir": run_dir, "kafka_bootstrap": "127.0.0.1:9092"}
    if service == "ingest":
        from services.ingest.app import create_app as ingest_app
        from services.ingest.settings import IngestSettings

        broker: KafkaBroker = ingest_app(IngestSettings(**env)).state.ingest.broker
        return broker
    if service == "router":
        from services.router.app import create_app as router_app
        from services.router.settings import RouterSettings

        broker = router_app(RouterSettings(**env)).state.deps.broker
        return broker
    if service == "notifier":
        from services.notifier.app import create_app as notifier_app
        from services.notifier.settings import NotifierSettings

        broker = notifier_app(NotifierSettings(**env)).state.deliverer.broker
        return broker
    if service == "status":
        # status builds its broker in the lifespan; register() is what the lifespan calls
        from services.status.consumers import register
        from services.status.resources import Resources
        from services.status.settings import StatusSettings
        from shared.kafka import build_broker

        settings = StatusSettings(**env)
        broker = build_broker(settings, client_id="refdesk-status")
        register(broker, Resources(settings=settings, sessions=None, publisher=None))  # type: ignore[arg-type]
        return broker
    if service == "publisher":
        from services.publisher.app import create_app as publisher_app
        from services.publisher.settings import PublisherSettings

        broker = publisher_app(PublisherSettings(**env)).state.broker
        return broker
    raise KeyError(service)


def render(service: str, broker: KafkaBroker) -> str:
    """The document a service serves at /asyncapi.yaml, typed by event from shared.topics."""
    return document(broker, service=service)


def generate() -> dict[str, str]:
    """Service name -> its AsyncAPI YAML, as the code generates it now."""
    with tempfile.TemporaryDirectory(prefix="refdesk-asyncapi-") as tmp:
        return {name: render(name, broker_of(name, Path(tmp))) for name in CONSUMERS}


def write(folder: Path = DOCS) -> list[Path]:
    """Write every document; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate().items():
        path = folder / f"{name}.yaml"
        path.write_text(text)
        written.append(path)
    return written


def stale(folder: Path = DOCS) -> list[str]:
    """Services whose committed document differs from what the code generates."""

    def differs(name: str, text: str) -> bool:
        path = folder / f"{name}.yaml"
        return not path.exists() or path.read_text() != text

    return [name for name, text in generate().items() if differs(name, text)]
