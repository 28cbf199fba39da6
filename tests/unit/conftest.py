"""The fast tier: unit and component tests run without a broker and without the network.

A test here that asks for the session broker, starts a LocalKafka or connects anywhere but
loopback fails at once, so `make test-unit` stays under a minute and runs on any machine.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from refdesk_cli.kafka_local import LocalKafka

LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Shadows the session broker: the unit tier has none."""
    pytest.fail("tests/unit starts no broker: move this test to tests/integration")
    yield ""  # pragma: no cover


@pytest.fixture(autouse=True)
def _no_broker_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker start or a connection off this machine fails the test that tries it."""

    def no_broker(*_args: Any, **_kwargs: Any) -> None:
        pytest.fail("tests/unit starts no broker: move this test to tests/integration")

    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(LOOPBACK):
            pytest.fail(f"tests/unit uses no network: a connection to {host} was attempted")
        return real_connect(self, address)

    monkeypatch.setattr(LocalKafka, "start", no_broker)
    monkeypatch.setattr(socket.socket, "connect", loopback_only)
