"""The whole system for fault tests: a broker, the four services as processes, an SMTP server
and an SMS API fake, each of which a test may kill, stop or restart."""

from __future__ import annotations

import json
import signal
import threading
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from refdesk_cli.kafka_local import LocalKafka, free_port
from refdesk_cli.mailsink import SinkHandler
from refdesk_cli.stack import Stack
from tests.integration.ingest.conftest import BASE, MAILGUN_KEY, TWILIO_TOKEN, WEBHOOK_SECRET
from tests.servers import SmtpController

SERVICES = ("ingest", "router", "notifier", "status")
READY_S = 180.0  # a shared two-core machine: starting a Python service can take a while


@dataclass
class SmsFake:
    """Twilio's Messages API, as far as the notifier uses it: records each create request,
    and lists the messages created (newest first, filtered by To and From), which the notifier
    reads before it sends again a text whose earlier attempt is in doubt."""

    requests: list[dict[str, str]] = field(default_factory=list)
    created: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    """0 until started: the server binds a port the system picks and reads it back."""
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                form["token"] = self.headers.get("I-Twilio-Idempotency-Token") or ""
                fake.requests.append(form)
                message = {
                    "sid": f"SM{uuid.uuid4().hex}",
                    "to": form.get("To", ""),
                    "from": form.get("From", ""),
                    "body": form.get("Body", ""),
                    "status": "queued",
                    "date_created": formatdate(usegmt=True),
                }
                fake.created.append(message)
                self._answer(201, message)

            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                found = [
                    m
                    for m in reversed(fake.created)
                    if m["to"] == query.get("To", m["to"])
                    and m["from"] == query.get("From", m["from"])
                ]
                self._answer(200, {"messages": found[: int(query.get("PageSize", "50"))]})

            def _answer(self, status: int, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class Smtp:
    """A real SMTP server (aiosmtpd) that can go down and come back, on the port it first bound
    (one the system picked)."""

    port: int = 0
    handler: SinkHandler = field(default_factory=SinkHandler)
    controller: SmtpController | None = None

    def start(self) -> None:
        self.controller = SmtpController(self.handler, port=self.port)
        self.controller.start()
        self.port = self.controller.port

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@dataclass
class System:
    root: Path
    kafka: LocalKafka
    stack: Stack
    smtp: Smtp
    sms: SmsFake
    extra: list[Stack] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def kill(self, name: str) -> None:
        """kill -9 one service."""
        self.stack.stop(name, sig=signal.SIGKILL)

    def restart(self, name: str) -> None:
        self.stack.start(name)
        self.stack.wait_ready(name, timeout=READY_S)

    def replica(self, name: str) -> Stack:
        """A second instance of a service: same run folder, database and group, its own port."""
        other = Stack(
            run_dir=self.stack.run_dir,
            env=self.stack.env,
            ports={**self.stack.ports, name: 0},
        )
        other.start(name)
        other.wait_ready(name, timeout=READY_S)
        self.extra.append(other)
        return other

    def stop(self) -> None:
        for other in self.extra:
            other.stop_all()
        self.stack.stop_all()
        self.smtp.stop()
        self.sms.stop()
        self.kafka.stop()


def start_system(root: Path, **env: str) -> System:
    """Broker, SMTP server, SMS fake and the four services, ready."""
    kafka = LocalKafka(data_dir=root / "kafka", port=free_port())
    kafka.start()
    kafka.wait_ready()
    smtp, sms = Smtp(), SmsFake()
    smtp.start()
    sms.start()
    base_env = {
        "REFDESK_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "REFDESK_TOPIC_PARTITIONS": "3",
        "REFDESK_SMTP_HOST": "127.0.0.1",
        "REFDESK_SMTP_PORT": str(smtp.port),
        "REFDESK_SMS_API_BASE_URL": sms.base_url,
        "REFDESK_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "REFDESK_SMS_FROM": "+18175550100",
        "REFDESK_PUBLIC_BASE_URL": BASE,
        "REFDESK_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "REFDESK_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
        "REFDESK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REFDESK_LOG_LEVEL": "WARNING",
        "REFDESK_STATUS_SESSION_SECRET": uuid.uuid4().hex * 2,
        # A row leased by a notifier that was killed waits this long before another attempt.
        "REFDESK_LEASE_S": "20",
        "REFDESK_SMTP_SEND_TIMEOUT_S": "8",  # a send ends within its lease
        **env,
    }
    stack = Stack(run_dir=root / "run", env=base_env, ports=dict.fromkeys(SERVICES, 0))
    system = System(root=root, kafka=kafka, stack=stack, smtp=smtp, sms=sms)
    try:
        for name in SERVICES:
            stack.start(name)
        for name in SERVICES:
            stack.wait_ready(name, timeout=READY_S)
    except BaseException:
        system.stop()
        raise
    return system


async def ledger_summary(system: System) -> dict[str, int]:
    """The notifier's ledger counts per state (pending, sent, dead)."""
    async with httpx.AsyncClient(timeout=10) as client:
        return dict((await client.get(f"{system.stack.url('notifier')}/ledger/summary")).json())
