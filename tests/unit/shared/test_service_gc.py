"""A service's start-up objects are frozen out of the garbage collector once it is up, and the
collector then runs at the service's thresholds."""

from __future__ import annotations

import asyncio
import gc

import uvicorn
from fastapi import FastAPI

from shared.service import GC_THRESHOLDS, _Server
from tests.eventually import eventually


async def test_what_start_up_built_is_frozen_once_the_server_is_up() -> None:
    gc.unfreeze()
    defaults = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    assert defaults != GC_THRESHOLDS
    server = _Server(uvicorn.Config(FastAPI(), host="127.0.0.1", port=0, log_config=None))
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, "the server started", timeout=10)
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        server.should_exit = True
        await serving
        gc.unfreeze()
        gc.set_threshold(*defaults)
