"""The whole system as separate processes: its own broker, a mail server the test controls."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from refdesk_cli.kafka_local import LocalKafka, free_port
from refdesk_cli.mailsink import SinkHandler
from refdesk_cli.stack import SERVICES, Stack
from tests.integration.ingest.conftest import BASE, MAILGUN_KEY, TWILIO_TOKEN, WEBHOOK_SECRET
from tests.servers import SmtpController


@dataclass
class System:
    stack: Stack
    kafka: LocalKafka
    mail: SinkHandler
    smtp: SmtpController
    public_base_url: str


@pytest.fixture(scope="session")
def e2e_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """Kafka, an SMTP server and every service, started once for the end-to-end tests."""
    root = Path(tmp_path_factory.mktemp("e2e"))
    kafka = LocalKafka(data_dir=root / "kafka", port=free_port())
    kafka.start()
    kafka.wait_ready()
    mail = SinkHandler(folder=root / "mail")
    smtp = SmtpController(mail)
    smtp.start()
    ports = dict.fromkeys(SERVICES, 0)  # each service binds a free port and reports it
    base = BASE  # the public URL providers call, as behind a proxy
    env = {
        "REFDESK_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "REFDESK_SMTP_HOST": "127.0.0.1",
        "REFDESK_SMTP_PORT": str(smtp.port),
        "REFDESK_PUBLIC_BASE_URL": base,
        "REFDESK_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "REFDESK_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
        "REFDESK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REFDESK_LOG_LEVEL": "INFO",
        "REFDESK_STATUS_SESSION_SECRET": uuid.uuid4().hex * 2,
    }
    stack = Stack(run_dir=root / "run", env=env, ports=ports)
    try:
        stack.start_all()
        yield System(stack=stack, kafka=kafka, mail=mail, smtp=smtp, public_base_url=base)
    finally:
        stack.stop_all()
        smtp.stop()
        kafka.stop()
