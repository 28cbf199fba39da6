"""Ports are bound by the process that serves on them and read back, never picked and handed
over: a service on port 0 writes the port it got to REFDESK_PORT_FILE, and the stack reads it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from refdesk_cli.stack import Stack
from shared.service import write_port_file

SERVE = """
import sys
from fastapi import FastAPI
from shared.service import serve
from shared.settings import CommonSettings

app = FastAPI()

@app.get("/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}

serve(app, CommonSettings(port_file=sys.argv[1], run_dir=sys.argv[2]), port=0)
"""


def test_a_service_on_port_0_serves_on_the_port_it_reports(tmp_path: Path) -> None:
    report = tmp_path / "ports" / "hello.port"
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(report), str(tmp_path)])
    try:
        deadline = time.monotonic() + 30
        while not report.exists():
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "no port reported"
            time.sleep(0.05)
        port = int(report.read_text("ascii"))
        assert port > 0
        answer = httpx.get(f"http://127.0.0.1:{port}/hello", timeout=5)
        assert answer.json() == {"hello": "world"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_the_stack_reads_the_reported_port_and_asks_for_it_again_on_restart(
    tmp_path: Path,
) -> None:
    stack = Stack(run_dir=tmp_path, env={}, ports={"status": 0})
    first = stack.environment("status")
    assert first["REFDESK_STATUS_PORT"] == "0"
    report = Path(first["REFDESK_PORT_FILE"])
    assert report.parent == tmp_path / "ports"

    with pytest.raises(RuntimeError, match="not reported its port"):
        stack.url("status")
    assert stack._reported_port("status") is None  # nothing written yet

    write_port_file(report, 43_210)
    assert stack._reported_port("status") == 43_210
    assert stack.url("status") == "http://127.0.0.1:43210"

    again = stack.environment("status")  # a restart
    assert again["REFDESK_STATUS_PORT"] == "43210"
    assert again["REFDESK_PORT_FILE"] == str(report)
    assert not report.exists(), "the last report is removed so a stale port is never read"


def test_a_configured_port_is_passed_as_it_is_and_nothing_is_reported(tmp_path: Path) -> None:
    stack = Stack(run_dir=tmp_path, env={}, ports={"ingest": 18_081})
    env = stack.environment("ingest")
    assert env["REFDESK_INGEST_PORT"] == "18081"
    assert "REFDESK_PORT_FILE" not in env
    assert stack._reported_port("ingest") == 18_081


def test_two_stacks_on_one_run_folder_report_to_files_of_their_own(tmp_path: Path) -> None:
    one = Stack(run_dir=tmp_path, env={}, ports={"status": 0})
    two = Stack(run_dir=tmp_path, env={}, ports={"status": 0})
    assert (
        one.environment("status")["REFDESK_PORT_FILE"]
        != two.environment("status")["REFDESK_PORT_FILE"]
    )


def test_a_half_written_report_is_never_read(tmp_path: Path) -> None:
    report = tmp_path / "p" / "x.port"
    write_port_file(report, 8081)
    assert report.read_text("ascii") == "8081\n"
    assert [p.name for p in report.parent.iterdir()] == ["x.port"]
