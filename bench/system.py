"""The system under test on this machine: a Kafka broker, the SMTP sink and service processes."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import make_url

from bench.machine import named_cpu_seconds
from bench.payloads import BASE, MAILGUN_KEY, TWILIO_TOKEN, WEBHOOK_SECRET
from refdesk_cli.kafka_local import LocalKafka, free_port
from refdesk_cli.mailsink import SinkHandler, SmtpController
from refdesk_cli.stack import SERVICES, Stack
from services.router.settings import DEFAULT_POLICY


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
class Postgres:
    """Fresh databases on a PostgreSQL server, one per service for each stack the bench starts
    (as docker-compose gives each service its own), dropped when the bench ends."""

    server_url: str
    """Any database on the server, e.g. postgresql+asyncpg://postgres:pw@127.0.0.1:5432/postgres."""
    prefix: str = field(default_factory=lambda: f"refdesk_bench_{uuid.uuid4().hex[:6]}")
    created: list[str] = field(default_factory=list)

    def database_url(self, stack: str) -> str:
        """REFDESK_DATABASE_URL for a stack (`{service}` in it), its databases created."""
        base = f"{self.prefix}_{re.sub(r'[^a-z0-9]+', '_', stack.lower())}"
        names = [f"{base}_{service}" for service in SERVICES]
        self.execute(*(f'CREATE DATABASE "{name}"' for name in names))
        self.created += names
        url = make_url(self.server_url).set(database="DATABASE")
        return url.render_as_string(hide_password=False).replace("DATABASE", f"{base}_{{service}}")

    def drop(self) -> None:
        """Drop every database this run created (closing the services' leftover sessions)."""
        self.execute(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self.created))
        self.created.clear()

    def version(self) -> str:
        """The server's version, e.g. "15.10"."""
        (version,) = self.execute("SHOW server_version")
        return str(version).split()[0]

    def execute(self, *statements: str) -> list[Any]:
        """Run statements on the server, one after another; the first value each returned.
        From a thread of its own: the bench's callers may be inside an event loop."""

        async def go() -> list[Any]:
            import asyncpg

            url = make_url(self.server_url)
            conn = await asyncpg.connect(
                user=url.username,
                password=url.password,
                host=url.host or "127.0.0.1",
                port=url.port or 5432,
                database=url.database or "postgres",
            )
            try:
                return [await conn.fetchval(sql) for sql in statements]
            finally:
                await conn.close()

        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(asyncio.run, go()).result()


@dataclass
class System:
    """Kafka, the mail sink and the services' environment, under one scratch folder."""

    root: Path
    kafka: LocalKafka
    smtp: SmtpController
    sink: StampingSink
    env: dict[str, str]
    postgres: Postgres | None = None
    """Where the services keep their data: PostgreSQL if given, else a SQLite file each."""

    def stack(
        self, name: str, names: tuple[str, ...], extra: dict[str, str] | None = None
    ) -> Stack:
        """A Stack for some services in its own run folder (and, on PostgreSQL, its own
        databases), each on a port it binds and reports."""
        ports = dict.fromkeys(SERVICES, 0)
        env = {**self.env, **(extra or {})}
        if self.postgres is not None:
            env["REFDESK_DATABASE_URL"] = self.postgres.database_url(name)
        return Stack(run_dir=self.root / name, env=env, ports=ports)

    def database_cpu_s(self) -> float | None:
        """CPU the database server has spent so far (None on SQLite, which runs in-process)."""
        return None if self.postgres is None else named_cpu_seconds("postgres")

    def stop(self) -> None:
        """Stop the sink and the broker, and drop the bench's databases."""
        self.smtp.stop()
        self.kafka.stop()
        if self.postgres is not None:
            self.postgres.drop()


ALL_DAY = [{"open": "00:00", "close": "23:59:59.999999"}]
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def desk_open_policy(root: Path) -> Path:
    """The shipped routing policy with the desk open every hour of the week, written under
    `root`: the end-to-end and catch-up stages route with it, so their work does not depend on
    the hour a run starts. (After hours the router also sends each new conversation an
    acknowledgement, one more notification per interaction: December 5 in
    docs/performance.md measured it.)"""
    doc = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    doc["hours"] = {day: ALL_DAY for day in DAYS}
    path = root / "policy-desk-open.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def start_system(root: Path, postgres: str | None = None) -> System:
    """Start a fresh broker on a free port and the stamping mail sink; with `postgres` (a
    server's URL), the services keep their data in fresh databases there."""
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
        "REFDESK_POLICY_FILE": str(desk_open_policy(root)),
    }
    db = Postgres(postgres) if postgres else None
    return System(root=root, kafka=kafka, smtp=smtp, sink=sink, env=env, postgres=db)


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
