"""Group commit: concurrent callers share one database round trip.

A `Batcher` runs its batch function once for everything submitted while the previous run was
in progress, so an idle service pays one round trip per call (no added latency), and a busy one
pays one per batch. Each caller awaits its own result; a failed run fails every caller of that
batch, and the next batch starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Calls `run(items)` (which returns one result per item, in order) for queued items."""

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_size: int = 256
    ) -> None:
        self._run = run
        self._max_size = max_size
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Queue one item and wait for the batch that carries it."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self._max_size], self._queue[self._max_size :]
                live = [(item, fut) for item, fut in batch if not fut.cancelled()]
                if not live:
                    continue
                try:
                    results = await self._run([item for item, _ in live])
                except Exception as exc:
                    for _, fut in live:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                except asyncio.CancelledError:
                    for _, fut in live:
                        if not fut.done():
                            fut.set_exception(RuntimeError("stopped"))
                    raise
                for (_, fut), result in zip(live, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)

    async def close(self) -> None:
        """Stop the worker; callers still waiting are failed."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for _, fut in self._queue:
            if not fut.done():
                fut.set_exception(RuntimeError("stopped"))
        self._queue.clear()
