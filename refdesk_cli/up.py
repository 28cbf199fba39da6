"""`refdesk up` (what `make run` runs): Kafka, the mail sink and the services, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from refdesk_cli.kafka_local import LocalKafka
from refdesk_cli.mailsink import start_sink
from refdesk_cli.stack import Stack


def up(run_dir: Path) -> None:
    """Bring the whole system up on this machine and keep it up until SIGINT or SIGTERM."""
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    kafka: LocalKafka | None = None
    sink = None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stack = Stack(run_dir=run_dir, env=env)
    try:
        if not os.environ.get("REFDESK_KAFKA_BOOTSTRAP"):
            kafka = LocalKafka(data_dir=run_dir / "kafka", port=9092)
            print("starting Kafka (KRaft) on 127.0.0.1:9092 ...", flush=True)
            kafka.start()
            kafka.wait_ready()
            env["REFDESK_KAFKA_BOOTSTRAP"] = kafka.bootstrap
        if not os.environ.get("REFDESK_SMTP_HOST"):
            sink, _ = start_sink(
                port=int(os.environ.get("REFDESK_SMTP_PORT", "1025")), folder=run_dir / "mail"
            )
            env["REFDESK_SMTP_HOST"] = "127.0.0.1"
            print(f"mail sink on 127.0.0.1:{sink.port}; messages in {run_dir / 'mail'}", flush=True)
        stack.start_all()
        for name in stack.ports:
            print(f"{name:9} {stack.url(name)}  (/healthz /readyz /metrics /docs)", flush=True)
        print(
            f"logs in {run_dir / 'logs'}; SMS and chat outboxes in {run_dir / 'outbox'}."
            " Ctrl-C stops.",
            flush=True,
        )
        while not stop.wait(1.0):
            for name, proc in list(stack.processes.items()):
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping", flush=True)
                    stop.set()
    finally:
        print("stopping ...", flush=True)
        stack.stop_all()
        if sink is not None:
            sink.stop()
        if kafka is not None:
            kafka.stop()
