"""shared.batching.Batcher: concurrent callers share one run of the batch function."""

from __future__ import annotations

import asyncio

import pytest

from shared.batching import Batcher


class Recorder:
    """A batch function that notes each batch and answers item * 10."""

    def __init__(self, *, fail_on: int | None = None, pause: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.pause = pause

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(self.pause)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError("refused")
        return [item * 10 for item in items]


async def test_a_lone_call_runs_at_once_in_a_batch_of_its_own() -> None:
    run = Recorder()
    batcher: Batcher[int, int] = Batcher(run)
    assert await batcher.submit(1) == 10
    assert await batcher.submit(2) == 20
    assert run.batches == [[1], [2]]
    await batcher.close()


async def test_calls_made_while_a_batch_runs_share_the_next_one() -> None:
    run = Recorder(pause=0.05)
    batcher: Batcher[int, int] = Batcher(run)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first batch is running now
    rest = await asyncio.gather(*(batcher.submit(i) for i in range(1, 6)))
    assert await first == 0
    assert rest == [10, 20, 30, 40, 50]
    assert run.batches == [[0], [1, 2, 3, 4, 5]]
    await batcher.close()


async def test_a_failed_batch_fails_its_callers_only() -> None:
    run = Recorder(fail_on=3, pause=0.02)
    batcher: Batcher[int, int] = Batcher(run)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.005)
    doomed = [asyncio.create_task(batcher.submit(i)) for i in (2, 3)]
    assert await first == 10
    for task in doomed:
        with pytest.raises(ValueError, match="refused"):
            await task
    assert await batcher.submit(4) == 40  # the worker carries on
    assert run.batches == [[1], [2, 3], [4]]
    await batcher.close()


async def test_batches_are_capped_at_max_size() -> None:
    run = Recorder(pause=0.02)
    batcher: Batcher[int, int] = Batcher(run, max_size=3)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.005)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(1, 8)))
    await first
    assert results == [i * 10 for i in range(1, 8)]
    assert run.batches == [[0], [1, 2, 3], [4, 5, 6], [7]]
    await batcher.close()


async def test_a_caller_that_gave_up_is_left_out_of_the_batch() -> None:
    run = Recorder(pause=0.03)
    batcher: Batcher[int, int] = Batcher(run)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.005)
    impatient = asyncio.create_task(batcher.submit(1))
    patient = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0)
    impatient.cancel()
    assert await patient == 20
    await first
    assert run.batches == [[0], [2]]
    await batcher.close()


async def test_close_fails_callers_still_waiting() -> None:
    run = Recorder(pause=10)
    batcher: Batcher[int, int] = Batcher(run)
    waiting = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)
    await batcher.close()
    with pytest.raises(RuntimeError, match="stopped"):
        await waiting
