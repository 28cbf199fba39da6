"""Run Apache Kafka (KRaft, one node) from the official jars that Maven resolves.

Used by `make run` and by the test suite. The jars are resolved once into a cache folder
(REFDESK_CACHE_DIR, default ~/.cache/refdesk) by `mvn dependency:copy-dependencies` on
deploy/kafka/pom.xml; Kafka's own scripts do nothing more than `java -cp 'libs/*'`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from refdesk_cli.signals import Check, Interrupted, StopSignals

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy" / "kafka"
KAFKA_VERSION = "4.1.1"


def cache_dir() -> Path:
    """Where resolved jars live (outside the work tree, shared by clones)."""
    base = os.environ.get("REFDESK_CACHE_DIR") or str(Path.home() / ".cache" / "refdesk")
    return Path(base) / "kafka" / KAFKA_VERSION


def provision() -> Path:
    """Resolve the broker's classpath with Maven unless it is already cached."""
    libs = cache_dir() / "libs"
    marker = libs / f"kafka_2.13-{KAFKA_VERSION}.jar"
    if marker.exists():
        return libs
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(DEPLOY / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ],
        check=True,
    )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    return libs


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalKafka:
    """One KRaft node: format its storage, start it, wait until it answers, stop it."""

    data_dir: Path
    port: int = 9092
    controller_port: int = field(default_factory=free_port)
    heap: str = "512m"
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, libs: Path, *args: str) -> list[str]:
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def start(self) -> None:
        """Format fresh storage and start the broker in the background."""
        libs = provision()
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        text = Template((DEPLOY / "server.properties.template").read_text()).substitute(
            port=self.port,
            controller_port=self.controller_port,
            log_dirs=self.data_dir / "data",
        )
        props.write_text(text)
        if not (self.data_dir / "data" / "meta.properties").exists():
            subprocess.run(
                self._java(
                    libs,
                    "kafka.tools.StorageTool",
                    "format",
                    "--config",
                    str(props),
                    "--cluster-id",
                    _cluster_id(),
                    "--standalone",
                    "--ignore-formatted",
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        out = (self.data_dir / "logs" / "stdout.log").open("ab")
        self.process = subprocess.Popen(
            self._java(libs, "kafka.Kafka", str(props)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90.0, *, interrupted: Check | None = None) -> None:
        """Block until a metadata request succeeds (not merely until the port opens);
        Interrupted if `interrupted()` says to stop first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if interrupted is not None and interrupted():
                raise Interrupted("stopped while Kafka was starting")
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"Kafka exited with {self.process.returncode}; see {self.data_dir}/logs"
                )
            if asyncio.run(_answers(self.bootstrap)):
                return
            time.sleep(0.5)
        raise TimeoutError(f"Kafka on {self.bootstrap} did not answer within {timeout} s")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop cleanly (SIGTERM), killing it only if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Kill the broker at once (fault tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _cluster_id() -> str:
    """A KRaft cluster id: a base64url UUID, as `kafka-storage random-uuid` prints.

    Like Kafka's own Uuid.randomUuid, ids starting with "-" are drawn again: the storage tool
    would read one as an option (about one start in 64 would fail).
    """
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


async def _answers(bootstrap: str) -> bool:
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def parser() -> argparse.ArgumentParser:
    """The command line: `provision`, or `run [PORT] [DIR]`; anything else is refused."""
    cli = argparse.ArgumentParser(
        prog="python -m refdesk_cli.kafka_local",
        description=f"Apache Kafka {KAFKA_VERSION} (KRaft, one node) for development and tests.",
    )
    sub = cli.add_subparsers(dest="command", required=True, metavar="{provision,run}")
    sub.add_parser("provision", help="resolve the broker's jars into the cache (Maven), once")
    run = sub.add_parser("run", help="run a broker on 127.0.0.1 until Ctrl-C or SIGTERM")
    run.add_argument("port", nargs="?", type=int, default=9092, help="listener port (9092)")
    run.add_argument(
        "dir", nargs="?", type=Path, default=REPO / "run" / "kafka", help="data folder (run/kafka)"
    )
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m refdesk_cli.kafka_local provision|run [PORT] [DIR]`; exits 2 with the usage
    on an unknown command or argument (nothing is started)."""
    args = parser().parse_args(argv)
    if args.command == "provision":
        print(provision())
        return
    kafka = LocalKafka(data_dir=args.dir, port=args.port)
    kafka.start()
    kafka.wait_ready()
    print(f"Kafka {KAFKA_VERSION} ready on {kafka.bootstrap}", flush=True)
    assert kafka.process is not None
    # Signal handlers only set a flag (refdesk_cli.signals); the main thread stops the broker.
    with StopSignals() as stop:
        while kafka.process.poll() is None and not stop.sleep(1.0):
            pass
        kafka.stop()


if __name__ == "__main__":
    main()
