"""Start and stop the services as separate processes (for `refdesk up` and end-to-end tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES: dict[str, tuple[str, int]] = {
    "ingest": ("REFDESK_INGEST_PORT", 8081),
    "router": ("REFDESK_ROUTER_PORT", 8082),
    "notifier": ("REFDESK_NOTIFIER_PORT", 8083),
    "status": ("REFDESK_STATUS_PORT", 8084),
    "publisher": ("REFDESK_PUBLISHER_PORT", 8085),
}


@dataclass
class Stack:
    """The services of one deployment on this machine, sharing a run folder and environment."""

    run_dir: Path
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=lambda: {n: p for n, (_, p) in SERVICES.items()})
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        """Base URL of a service."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start one service in its own process; its JSON logs go to run_dir/logs/<name>.log."""
        var, _ = SERVICES[name]
        env = {
            **os.environ,
            **self.env,
            var: str(self.ports[name]),
            "REFDESK_RUN_DIR": str(self.run_dir),
        }
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = (logs / f"{name}.log").open("ab")
        argv = [sys.executable, "-m", f"services.{name}", *(["serve"] if name == "router" else [])]
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = proc
        return proc

    def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        """Block until the service's /readyz answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see {self.run_dir}/logs/{name}.log"
                )
            try:
                if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{name} not ready within {timeout} s")

    def start_all(self, names: tuple[str, ...] = tuple(SERVICES)) -> None:
        """Start the services and wait until each is ready."""
        for name in names:
            self.start(name)
        for name in names:
            self.wait_ready(name)

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

    def stop_all(self) -> None:
        """SIGTERM every service (in parallel) and wait for them."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in list(self.processes):
            self.stop(name)
