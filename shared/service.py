"""Running a service: one uvicorn server whose lifespan starts and stops the Kafka broker.

uvicorn turns SIGTERM into a lifespan shutdown: the HTTP server stops taking requests, the
broker's subscribers finish the message in hand (graceful_timeout), the producer flushes and
offsets are committed, then the process exits, within REFDESK_SHUTDOWN_TIMEOUT_S.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from shared.settings import CommonSettings


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
    uvicorn.Server(config).run()
