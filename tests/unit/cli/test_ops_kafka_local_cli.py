"""`python -m refdesk_cli.kafka_local`: `provision`, `run [PORT] [DIR]` and `--help`; anything
else is refused with the usage and starts nothing (`--help` had started a broker on 9092)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from refdesk_cli import kafka_local


class FakeKafka:
    """LocalKafka's surface as main uses it; notes what it was asked to run."""

    made: list[FakeKafka] = []

    def __init__(self, *, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.started = False
        self.process: Any = None
        FakeKafka.made.append(self)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.started = True

        class Exited:
            def poll(self) -> int:
                return 0  # the broker has exited: main stops at once

        self.process = Exited()

    def wait_ready(self) -> None:
        return None

    def stop(self) -> None:
        return None


@pytest.fixture
def brokers(monkeypatch: pytest.MonkeyPatch) -> list[FakeKafka]:
    FakeKafka.made = []
    monkeypatch.setattr(kafka_local, "LocalKafka", FakeKafka)
    return FakeKafka.made


def test_help_prints_the_usage_and_starts_nothing(
    brokers: list[FakeKafka], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["kafka_local.py", "--help"])  # as `python -m` passes it
    with pytest.raises(SystemExit) as done:
        kafka_local.main()
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "provision" in out and "run" in out
    assert brokers == []


@pytest.mark.parametrize(
    "argv", [[], ["bogus"], ["--port", "9093"], ["run", "not-a-port"], ["run", "9093", "d", "x"]]
)
def test_anything_else_is_refused_with_the_usage(
    brokers: list[FakeKafka], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        kafka_local.main(argv)
    assert done.value.code == 2
    assert capsys.readouterr().err.startswith("usage: python -m refdesk_cli.kafka_local")
    assert brokers == []


def test_run_takes_a_port_and_a_folder(brokers: list[FakeKafka], tmp_path: Path) -> None:
    kafka_local.main(["run", "19092", str(tmp_path)])
    (broker,) = brokers
    assert (broker.port, broker.data_dir, broker.started) == (19092, tmp_path, True)


def test_run_defaults_to_9092_in_the_run_folder(brokers: list[FakeKafka]) -> None:
    kafka_local.main(["run"])
    (broker,) = brokers
    assert (broker.port, broker.data_dir) == (9092, kafka_local.REPO / "run" / "kafka")


def test_provision_resolves_the_jars_and_starts_nothing(
    brokers: list[FakeKafka],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(kafka_local, "provision", lambda: tmp_path / "libs")
    kafka_local.main(["provision"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "libs")
    assert brokers == []
