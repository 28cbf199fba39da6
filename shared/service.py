"""Running a service: one uvicorn server whose lifespan starts and stops the Kafka broker.

uvicorn turns SIGTERM into a lifespan shutdown: the HTTP server stops taking requests, the
broker's subscribers finish the message in hand (graceful_timeout), the producer flushes and
offsets are committed, then the process exits, within REFDESK_SHUTDOWN_TIMEOUT_S.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO, TypeVar

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from shared import variables
from shared.settings import CommonSettings, refusals, variable_of

T = TypeVar("T")
REFUSED_EXIT = 2
"""The exit status of a start refused for its settings (a usage error: restarting is no use)."""

GC_THRESHOLDS = (10_000, 10, 10)
"""The collector's thresholds once start-up is frozen (Python's are 700, 10, 10). Most objects
an event makes (the record, its decoded model, the ORM rows, the log record) are freed by
reference counting; at 700 the status service still collected its young generation 869-1,464
times in a 6,000-interaction drain. At 10,000 young objects it collects 25-46 times, and the
five services spent 0.63-1.08 s in the collector during the drain instead of 1.49-1.89 s
(docs/performance.md)."""


class _Server(uvicorn.Server):
    """uvicorn's server, with what start-up built moved out of the garbage collector's sight.

    After start-up a service holds some 150,000 long-lived objects (modules, mappers, schemas,
    templates, the routing model) that a full collection walks every time: about 70 ms on this
    hardware, a pause every request in flight waits out. `gc.freeze()` once the app is up
    leaves the collector only what was made since, and it then runs less often
    (`GC_THRESHOLDS`).
    """

    def __init__(self, config: uvicorn.Config, *, port_file: Path | None = None) -> None:
        super().__init__(config)
        self._port_file = port_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, report the port bound, then freeze what start-up built."""
        await super().startup(sockets)
        if self._port_file is not None and self.started:
            write_port_file(self._port_file, bound_port(self.servers[0].sockets))
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)


def bound_port(sockets: tuple[socket.socket, ...] | list[socket.socket]) -> int:
    """The TCP port a listening server's sockets are bound to."""
    port: int = sockets[0].getsockname()[1]
    return port


def write_port_file(path: Path, port: int) -> None:
    """Write the port whole or not at all: a reader never sees half a number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(f"{port}\n", encoding="ascii")
    os.replace(partial, path)


def serve(app: FastAPI, settings: CommonSettings, *, port: int) -> None:
    """Serve the app until SIGTERM or Ctrl-C (on `port`; 0 lets the system pick one, which
    is written to `settings.port_file`).

    A proxy's X-Forwarded-For is believed only from the addresses REFDESK_FORWARDED_ALLOW_IPS
    names: uvicorn's own default believes it from 127.0.0.1, so any process on the machine
    could give each request another client address (and sidestep the sign-in throttle)."""
    proxies = settings.forwarded_allow_ips.strip()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        lifespan="on",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
    _Server(config, port_file=settings.port_file).run()


def start(
    service: str,
    main: Callable[[], T],
    settings: type[BaseSettings],
    *,
    loaded: Mapping[type[Exception], str] | None = None,
    err: TextIO | None = None,
) -> T:
    """Run a service's `main`; if its settings are refused, exit with status 2 and one line
    per REFDESK_* variable on stderr, every one at once and never its value, instead of a
    traceback. `loaded` maps the errors of files the settings name, loaded at start, to the
    field naming the file (the router's PolicyError -> policy_file). A REFDESK_* variable no
    part of refdesk reads is named first (a misspelling was ignored without a word)."""
    loaded = loaded or {}
    for line in variables.warnings(os.environ):
        print(f"refdesk {service}: {line}", file=err or sys.stderr)
    try:
        return main()
    except ValidationError as exc:
        if exc.title != settings.__name__:  # not the settings: a bug, with its traceback
            raise
        lines = refusals(settings, exc)
    except tuple(loaded) as exc:
        field = next(f for kind, f in loaded.items() if isinstance(exc, kind))
        variable, why = variable_of(settings, field), str(exc)
        lines = [why if why.startswith(f"{variable}:") else f"{variable}: {why}"]
    print(f"refdesk {service}: refused to start; fix these settings:", file=err or sys.stderr)
    for line in lines:
        print("  " + line.replace("\n", "\n    "), file=err or sys.stderr)
    raise SystemExit(REFUSED_EXIT)
