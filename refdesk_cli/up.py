"""`refdesk up` (what `make run` runs): Kafka, the mail sink and the services, until Ctrl-C.

SIGINT and SIGTERM, however many and however close together, only set a flag
(`refdesk_cli.signals`); the main thread notices it between the steps of starting and in every
wait, stops starting, and stops what runs: the services in parallel (SIGTERM, killed after
SERVICE_STOP_S), then the mail sink, then Kafka (killed after KAFKA_STOP_S).

A service that exits on its own is started again, as compose's `restart: unless-stopped` does
(the others keep running: a crashed notifier no longer took ingest, and the status callbacks
Twilio posts meanwhile, down with it); one that exits CRASH_LOOP times within CRASH_WINDOW_S
stops everything, with a pointer to its log.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path

from refdesk_cli.kafka_local import LocalKafka
from refdesk_cli.mailsink import start_sink
from refdesk_cli.signals import Interrupted, StopSignals
from refdesk_cli.stack import Stack

SERVICE_STOP_S = 15.0
"""Longest a service may take to stop after SIGTERM (its own budget is
REFDESK_SHUTDOWN_TIMEOUT_S, 8 s by default) before it is killed."""
KAFKA_STOP_S = 20.0
"""Longest the local broker may take to stop after SIGTERM before it is killed."""
STOP_BUDGET_S = SERVICE_STOP_S + KAFKA_STOP_S + 5.0
"""Longest `refdesk up` takes from a stop signal to every child gone."""
CRASH_LOOP = 5
CRASH_WINDOW_S = 60.0
"""A service that exits this many times within this many seconds is not started again."""


class Restarts:
    """When each service last exited on its own, to tell a crash from a crash loop."""

    def __init__(self, *, limit: int = CRASH_LOOP, window_s: float = CRASH_WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._exits: dict[str, deque[float]] = {}

    def may_restart(self, name: str, now: float) -> bool:
        """Record an exit of `name` at `now`; whether to start it again."""
        exits = self._exits.setdefault(name, deque(maxlen=self.limit))
        exits.append(now)
        return len(exits) < self.limit or now - exits[0] > self.window_s


def restart_exited(stack: Stack, restarts: Restarts, now: float) -> str | None:
    """Start again each service that exited; why everything should stop, if one loops."""
    for name, proc in list(stack.processes.items()):
        code = proc.poll()
        if code is None:
            continue
        log = stack.run_dir / "logs" / f"{name}.log"
        if not restarts.may_restart(name, now):
            return (
                f"{name} exited {restarts.limit} times within {restarts.window_s:.0f} s; see {log}"
            )
        print(f"{name} exited with {code}; starting it again (its log: {log})", flush=True)
        stack.start(name)
    return None


def up(run_dir: Path, *, kafka_port: int = 9092) -> None:
    """Bring the whole system up on this machine and keep it up until SIGINT or SIGTERM."""
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    kafka: LocalKafka | None = None
    sink = None
    stack = Stack(run_dir=run_dir, env=env)
    with StopSignals() as stop:
        try:
            if not os.environ.get("REFDESK_KAFKA_BOOTSTRAP"):
                kafka = LocalKafka(data_dir=run_dir / "kafka", port=kafka_port)
                print(f"starting Kafka (KRaft) on 127.0.0.1:{kafka_port} ...", flush=True)
                kafka.start()
                kafka.wait_ready(interrupted=stop.is_set)
                env["REFDESK_KAFKA_BOOTSTRAP"] = kafka.bootstrap
            stop.check()
            if not os.environ.get("REFDESK_SMTP_HOST"):
                sink, _ = start_sink(
                    port=int(os.environ.get("REFDESK_SMTP_PORT", "1025")), folder=run_dir / "mail"
                )
                env["REFDESK_SMTP_HOST"] = "127.0.0.1"
                print(
                    f"mail sink on 127.0.0.1:{sink.port}; messages in {run_dir / 'mail'}",
                    flush=True,
                )
            stack.start_all(interrupted=stop.is_set)
            for name in stack.ports:
                print(f"{name:9} {stack.url(name)}  (/healthz /readyz /metrics /docs)", flush=True)
            print(
                f"logs in {run_dir / 'logs'}; SMS and chat outboxes in {run_dir / 'outbox'}."
                " Ctrl-C stops.",
                flush=True,
            )
            restarts = Restarts()
            while not stop.sleep(1.0):
                looping = restart_exited(stack, restarts, time.monotonic())
                if looping:
                    print(f"{looping}; stopping", flush=True)
                    break
        except Interrupted:
            pass
        finally:
            print("stopping ...", flush=True)
            stack.stop_all(timeout=SERVICE_STOP_S)
            if sink is not None:
                sink.stop()
            if kafka is not None:
                kafka.stop(timeout=KAFKA_STOP_S)
