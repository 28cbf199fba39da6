"""Running a service: one uvicorn server whose lifespan starts and stops the Kafka broker.

uvicorn turns SIGTERM into a lifespan shutdown: the HTTP server stops taking requests, the
broker's subscribers finish the message in hand (graceful_timeout), the producer flushes and
offsets are committed, then the process exits, within REFDESK_SHUTDOWN_TIMEOUT_S.
"""

from __future__ import annotations

import gc
import socket

import uvicorn
from fastapi import FastAPI

from shared.settings import CommonSettings


class _Server(uvicorn.Server):
    """uvicorn's server, with what start-up built moved out of the garbage collector's sight.

    After start-up a service holds some 150,000 long-lived objects (modules, mappers, schemas,
    templates, the routing model) that a full collection walks every time: about 70 ms on this
    hardware, a pause every request in flight waits out. `gc.freeze()` once the app is up
    leaves the collector only what was made since.
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then freeze what start-up built."""
        await super().startup(sockets)
        gc.collect()
        gc.freeze()


def serve(app: FastAPI, settings: CommonSettings, *, port: int) -> None:
    """Serve the app until SIGTERM or Ctrl-C."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        lifespan="on",
    )
    _Server(config).run()
