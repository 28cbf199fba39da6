"""`refdesk up` always stops (issue 13, finding 7): SIGTERM and SIGINT, alone or in bursts of
alternating signals microseconds apart, at random moments of its life (starting, idle, under
load), and every process it started is gone within its stop budget.

It hung before: its handler called threading.Event.set() while the main thread waited on the
same Event, and a second signal landing inside the first handler deadlocked on the Event's lock.

The full run (`make test-faults`) stops `refdesk up` 20 times, a few of them with its own local
Kafka; the short variant (`make test`) stops it 3 times against the session's broker.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from refdesk_cli.kafka_local import free_port
from refdesk_cli.stack import SERVICES
from refdesk_cli.up import STOP_BUDGET_S
from refdesk_cli.webhooks import Secrets, sms

RUNS = 20
BURST_S = 0.05
SHUTDOWN_S = "4"  # each service's own stop budget (REFDESK_SHUTDOWN_TIMEOUT_S)
LAUNCH = (
    "import sys; from pathlib import Path; from refdesk_cli.up import up; "
    "up(Path(sys.argv[1]), kafka_port=int(sys.argv[2]))"
)


@dataclass(frozen=True)
class Plan:
    """One stop: when (a phase and a delay into it), which signal, and whether in a burst."""

    phase: str  # starting | idle | load
    delay_s: float
    sig: signal.Signals
    burst: bool
    local_kafka: bool = False


@dataclass
class Up:
    """One `refdesk up` and every process seen beneath it."""

    proc: subprocess.Popen[bytes]
    run_dir: Path
    ports: dict[str, int]
    seen: set[int] = field(default_factory=set)
    _watching: bool = True

    def watch(self) -> None:
        """Record every descendant of `refdesk up` until told to stop (every 20 ms)."""
        while self._watching:
            self.seen |= descendants(self.proc.pid)
            time.sleep(0.02)

    def ready(self) -> bool:
        try:
            return all(
                httpx.get(f"http://127.0.0.1:{p}/readyz", timeout=1).status_code == 200
                for p in self.ports.values()
            )
        except httpx.HTTPError:
            return False


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


def descendants(root: int) -> set[int]:
    """Every live process below `root`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[0]
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] != "Z"


def marked(run_dir: Path) -> set[int]:
    """Live processes whose command line or environment names this run's folder (an orphaned
    service or broker would, whoever its parent is now)."""
    mark = str(run_dir).encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if mark in blob and alive(int(entry.name)):
            found.add(int(entry.name))
    return found


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def send(pid: int, plan: Plan) -> None:
    """The plan's signal; in a burst, alternating SIGINT/SIGTERM about 20 µs apart for BURST_S
    (the probe's 3 ms hung the old handler 5 times in 5 on a quiet machine; on this shared one a
    longer burst is needed to hit it often; tests/unit/cli/test_cli_signals.py checks the
    handler deterministically)."""
    if not plan.burst:
        os.kill(pid, plan.sig)
        return
    other = signal.SIGINT if plan.sig == signal.SIGTERM else signal.SIGTERM
    end = time.perf_counter() + BURST_S
    n = 0
    while time.perf_counter() < end:
        try:
            os.kill(pid, plan.sig if n % 2 == 0 else other)
        except ProcessLookupError:
            return
        n += 1
        spin = time.perf_counter() + 20e-6
        while time.perf_counter() < spin:
            pass


class Load:
    """Signed SMS webhooks to ingest, one after another, until stopped."""

    def __init__(self, ingest_port: int) -> None:
        self.url = f"http://127.0.0.1:{ingest_port}"
        self.stopping = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        secrets = Secrets.from_env()
        secrets = Secrets(
            secrets.twilio_auth_token,
            secrets.mailgun_signing_key,
            secrets.webhook_secret,
            self.url,
        )
        with httpx.Client(base_url=self.url, timeout=2) as client:
            while not self.stopping.is_set():
                form = {"from": f"+1817555{random.randrange(10_000):04d}", "body": "renew?"}
                request = sms(form, secrets)
                try:
                    client.post(request.path, content=request.content, headers=request.headers)
                    self.sent += 1
                except httpx.HTTPError:
                    pass


def start_up(tmp: Path, bootstrap: str | None) -> Up:
    run_dir = tmp / f"up-{uuid.uuid4().hex[:8]}"
    ports = {name: free_port() for name in SERVICES}
    env = {
        **os.environ,
        **{SERVICES[name][0]: str(port) for name, port in ports.items()},
        "REFDESK_SMTP_PORT": str(free_port()),
        "REFDESK_SHUTDOWN_TIMEOUT_S": SHUTDOWN_S,
        "REFDESK_ENV": "development",
        "REFDESK_TOPIC_PARTITIONS": "1",
        "REFDESK_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['ingest']}",
    }
    env.pop("REFDESK_SMTP_HOST", None)
    env.pop("REFDESK_DATABASE_URL", None)
    if bootstrap:
        env["REFDESK_KAFKA_BOOTSTRAP"] = bootstrap
    else:
        env.pop("REFDESK_KAFKA_BOOTSTRAP", None)
    out = (tmp / f"{run_dir.name}.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(run_dir), str(free_port())],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    up = Up(proc=proc, run_dir=run_dir, ports=ports)
    threading.Thread(target=up.watch, daemon=True).start()
    return up


def stop_and_check(tmp: Path, bootstrap: str | None, plan: Plan) -> float:
    """Start `refdesk up`, signal it as planned, and assert it and everything it started are
    gone within STOP_BUDGET_S; the seconds that took."""
    up = start_up(tmp, None if plan.local_kafka else bootstrap)
    load: Load | None = None
    try:
        if plan.phase != "starting":
            deadline = time.monotonic() + 180
            while not up.ready():
                assert up.proc.poll() is None, (tmp / f"{up.run_dir.name}.out").read_text()
                assert time.monotonic() < deadline, "refdesk up did not become ready"
                time.sleep(0.3)
        if plan.phase == "load":
            load = Load(up.ports["ingest"])
            load.thread.start()
        time.sleep(plan.delay_s)
        stopped_at = time.monotonic()
        send(up.proc.pid, plan)
        try:
            up.proc.wait(timeout=STOP_BUDGET_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"refdesk up still running {STOP_BUDGET_S} s after {plan}")
        up._watching = False
        while True:
            left = {pid for pid in up.seen if alive(pid)} | marked(up.run_dir)
            elapsed = time.monotonic() - stopped_at
            if not left:
                break
            assert elapsed < STOP_BUDGET_S, f"{plan}: still running after {elapsed:.1f} s: {left}"
            time.sleep(0.1)
        assert all(port_free(p) for p in up.ports.values()), plan
        return elapsed
    finally:
        if load is not None:
            load.stopping.set()
        up._watching = False
        for pid in {pid for pid in up.seen if alive(pid)} | marked(up.run_dir):
            try:  # never leave a process behind, even when the test fails
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait()


def plans(count: int, *, seed: int, local_kafka_every: int = 0) -> list[Plan]:
    """`count` stops cycling through the phases, signals and bursts, at random delays."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        phase = ("starting", "idle", "load")[i % 3]
        out.append(
            Plan(
                phase=phase,
                delay_s=rng.uniform(0.05, 4.0 if phase == "starting" else 1.5),
                sig=(signal.SIGTERM, signal.SIGINT)[(i // 3) % 2],
                burst=rng.random() < 0.5,
                local_kafka=bool(local_kafka_every) and i % local_kafka_every == 0,
            )
        )
    return out


SHORT = [
    Plan("starting", 0.8, signal.SIGTERM, burst=True),
    Plan("idle", 0.3, signal.SIGINT, burst=False),
    Plan("load", 0.5, signal.SIGTERM, burst=True),
]


@pytest.mark.short_faults
@pytest.mark.timeout(600)
@pytest.mark.parametrize("plan", SHORT, ids=lambda p: f"{p.phase}-{p.sig.name}-burst{p.burst}")
def test_refdesk_up_stops_on_a_signal(plan: Plan, kafka_bootstrap: str, tmp_path: Path) -> None:
    assert stop_and_check(tmp_path, kafka_bootstrap, plan) < STOP_BUDGET_S


@pytest.mark.timeout(3600)
def test_refdesk_up_stops_20_times_at_random_moments(kafka_bootstrap: str, tmp_path: Path) -> None:
    java = shutil.which("java") is not None
    schedule = plans(RUNS, seed=13, local_kafka_every=5 if java else 0)
    took = [stop_and_check(tmp_path, kafka_bootstrap, plan) for plan in schedule]
    assert len(took) == RUNS and max(took) < STOP_BUDGET_S
