"""Start and stop the services as separate processes (for `refdesk up` and end-to-end tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from refdesk_cli.signals import Check, Interrupted

SERVICES: dict[str, tuple[str, int]] = {
    "ingest": ("REFDESK_INGEST_PORT", 8081),
    "router": ("REFDESK_ROUTER_PORT", 8082),
    "notifier": ("REFDESK_NOTIFIER_PORT", 8083),
    "status": ("REFDESK_STATUS_PORT", 8084),
    "publisher": ("REFDESK_PUBLISHER_PORT", 8085),
}


def configured_ports(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Each service's port: its REFDESK_*_PORT variable when set, else its default."""
    ports = {}
    for name, (var, default) in SERVICES.items():
        raw = environ.get(var, "").strip()
        if raw and not raw.isdigit():
            raise ValueError(f"{var} must be a port number")
        ports[name] = int(raw) if raw else default
    return ports


@dataclass
class Stack:
    """The services of one deployment on this machine, sharing a run folder and environment.

    A port of 0 lets the service bind any free port and report it (REFDESK_PORT_FILE); the
    stack reads it back once the service is ready, and a restart asks for the same port again,
    as a load balancer in front of it would expect. No port is picked here and handed over.
    """

    run_dir: Path
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=configured_ports)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _port_files: dict[str, Path] = field(default_factory=dict, init=False, repr=False)

    def url(self, name: str) -> str:
        """Base URL of a service (once ready, when it was started on port 0)."""
        if not self.ports.get(name):
            raise RuntimeError(f"{name} has not reported its port yet: wait_ready() first")
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start one service in its own process; its JSON logs go to run_dir/logs/<name>.log."""
        env = self.environment(name)
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = (logs / f"{name}.log").open("ab")
        argv = [sys.executable, "-m", f"services.{name}", *(["serve"] if name == "router" else [])]
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = proc
        return proc

    def environment(self, name: str) -> dict[str, str]:
        """The environment a service starts with: ours, the stack's, its port and run folder
        (and, for a port of 0, the file it reports the port it bound to)."""
        var, _ = SERVICES[name]
        env = {
            **os.environ,
            **self.env,
            var: str(self.ports[name]),
            "REFDESK_RUN_DIR": str(self.run_dir),
        }
        if self.ports[name] == 0 or name in self._port_files:
            report = self._port_files.setdefault(
                name, self.run_dir / "ports" / f"{name}-{uuid.uuid4().hex[:12]}.port"
            )
            report.unlink(missing_ok=True)
            env["REFDESK_PORT_FILE"] = str(report)
        return env

    def _reported_port(self, name: str) -> int | None:
        """The port a service started on port 0 reported, once it has."""
        report = self._port_files.get(name)
        if report is None:
            return self.ports[name]
        try:
            port = int(report.read_text("ascii"))
        except (FileNotFoundError, ValueError):
            return None
        self.ports[name] = port
        return port

    def wait_ready(
        self, name: str, timeout: float = 60.0, *, interrupted: Check | None = None
    ) -> None:
        """Block until the service's /readyz answers 200 (Interrupted if told to stop)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if interrupted is not None and interrupted():
                raise Interrupted(f"stopped while {name} was starting")
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see {self.run_dir}/logs/{name}.log"
                )
            port = self._reported_port(name)
            try:
                if port and httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{name} not ready within {timeout} s")

    def start_all(
        self, names: tuple[str, ...] = tuple(SERVICES), *, interrupted: Check | None = None
    ) -> None:
        """Start the services and wait until each is ready (Interrupted if told to stop)."""
        for name in names:
            if interrupted is not None and interrupted():
                raise Interrupted(f"stopped before {name} started")
            self.start(name)
        for name in names:
            self.wait_ready(name, interrupted=interrupted)

    def stop(self, name: str, *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> float:
        """Stop a service with a signal; returns the seconds it took to exit."""
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return 0.0
        started = time.monotonic()
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return time.monotonic() - started

    def stop_all(self, timeout: float = 15.0) -> None:
        """SIGTERM every service at once, wait up to `timeout` in all, kill what is left."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in list(self.processes):
            self.stop(name, timeout=max(0.1, deadline - time.monotonic()))
