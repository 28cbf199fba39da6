"""Fault scenarios: each module starts its own broker, services, SMTP server and SMS fake."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.system import Postgres
from tests.faults import report
from tests.faults.system import System, start_system

# Fixtures of the integration suites, for the in-process fault tests moved here from them
# (ingest replicas and broker outage, notifier outages): the session broker, a relay, settings.
from tests.integration.ingest.conftest import settings  # noqa: F401
from tests.integration.notifier.conftest import configure, producer, relay  # noqa: F401

POSTGRES_SERVER = os.environ.get("REFDESK_TEST_POSTGRES_URL", "")
ON_POSTGRES = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_SERVER, reason="REFDESK_TEST_POSTGRES_URL not set"),
]
"""The marks of a module whose deployment keeps its data on PostgreSQL (.ci/run starts one)."""


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """Fresh databases on the server for a module's deployment, dropped at the end."""
    made = Postgres(POSTGRES_SERVER)
    try:
        yield made
    finally:
        made.drop()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A whole deployment of refdesk for one fault scenario module."""
    running = start_system(Path(tmp_path_factory.mktemp("faults")))
    try:
        yield running
    finally:
        running.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fault table; a full run also writes it into docs/reliability.md."""
    if not report.ROWS:
        return
    terminalreporter.write_sep("=", "fault table")
    terminalreporter.write_line(report.table())
    if report.FULL_RUN:
        report.write_doc()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "short_faults: the short fault subset that `make test` runs too"
    )
