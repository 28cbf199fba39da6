"""The system under test on this machine: a Kafka broker, the SMTP sink and service processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.payloads import BASE, MAILGUN_KEY, TWILIO_TOKEN, WEBHOOK_SECRET
from refdesk_cli.kafka_local import LocalKafka, free_port
from refdesk_cli.mailsink import SinkHandler, SmtpController
from refdesk_cli.stack import SERVICES, Stack


@dataclass
class StampingSink(SinkHandler):
    """The mail sink, noting time.monotonic() when each message's DATA arrives."""

    received: list[tuple[float, bytes]] = field(default_factory=list)
    parsed: list[tuple[float, list[int]]] = field(default_factory=list)
    """What bench.e2e_stage has read of `received` so far (receive time, TCC IDs)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Stamp, keep the raw bytes, then accept like the ordinary sink (without the files)."""
        stamp = time.monotonic()
        raw = envelope.original_content or envelope.content or b""
        with self.lock:
            self.received.append((stamp, raw if isinstance(raw, bytes) else raw.encode()))
        return "250 Message accepted for delivery"


@dataclass
class System:
    """Kafka, the mail sink and the services' environment, under one scratch folder."""

    root: Path
    kafka: LocalKafka
    smtp: SmtpController
    sink: StampingSink
    env: dict[str, str]

    def stack(
        self, name: str, names: tuple[str, ...], extra: dict[str, str] | None = None
    ) -> Stack:
        """A Stack for some services in its own run folder, each on a port it binds and reports."""
        ports = dict.fromkeys(SERVICES, 0)
        return Stack(run_dir=self.root / name, env={**self.env, **(extra or {})}, ports=ports)

    def stop(self) -> None:
        """Stop the sink and the broker."""
        self.smtp.stop()
        self.kafka.stop()


def start_system(root: Path) -> System:
    """Start a fresh broker on a free port and the stamping mail sink."""
    kafka = LocalKafka(data_dir=root / "kafka", port=free_port())
    kafka.start()
    sink = StampingSink()
    smtp = SmtpController(sink)
    smtp.start()
    try:
        kafka.wait_ready()
    except Exception:
        smtp.stop()
        kafka.stop()
        raise
    env = {
        "REFDESK_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "REFDESK_SMTP_HOST": "127.0.0.1",
        "REFDESK_SMTP_PORT": str(smtp.port),
        "REFDESK_PUBLIC_BASE_URL": BASE,
        "REFDESK_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "REFDESK_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
        "REFDESK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REFDESK_LOG_LEVEL": "INFO",
        "REFDESK_STATUS_SESSION_SECRET": uuid.uuid4().hex * 2,
    }
    return System(root=root, kafka=kafka, smtp=smtp, sink=sink, env=env)


def start_bare_app(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start baseline A in its own process and wait until it answers."""
    port = free_port()
    log = (root / "bare_app.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_app", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise TimeoutError("the bare app did not start")
