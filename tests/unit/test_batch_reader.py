"""Batches taken from a batch agent's queue (a mode ThrowableQueue, as Faust creates it)."""

from __future__ import annotations

import asyncio

import pytest
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from streams.processing.reader import read_batch


def queue_of(items: list[int], maxsize: int = 100) -> ThrowableQueue[int]:
    flow = FlowControlEvent()
    flow.resume()
    queue: ThrowableQueue[int] = ThrowableQueue(maxsize=maxsize, flow_control=flow)
    for item in items:
        queue.force_put_nowait(item)
    return queue


async def test_a_batch_takes_up_to_its_size_in_order_and_leaves_the_rest() -> None:
    queue = queue_of(list(range(10)))
    assert await read_batch(queue, 4, within=5) == [0, 1, 2, 3]
    assert await read_batch(queue, 4, within=5) == [4, 5, 6, 7]
    assert queue.qsize() == 2


async def test_events_the_reader_does_not_take_are_dropped_and_the_batch_fills_up() -> None:
    queue = queue_of(list(range(10)))
    odd = [1, 3, 5]
    assert await read_batch(queue, 3, within=5, take=lambda ns: [n for n in ns if n % 2]) == odd


async def test_a_partial_batch_is_handed_over_when_the_flush_interval_ends() -> None:
    queue = queue_of([1, 2])
    started = asyncio.get_running_loop().time()
    assert await read_batch(queue, 100, within=0.2) == [1, 2]
    assert 0.15 < asyncio.get_running_loop().time() - started < 2


async def test_an_error_thrown_into_the_queue_is_raised() -> None:
    queue = queue_of([1, 2, 3])
    await queue.throw(StopAsyncIteration())
    with pytest.raises(StopAsyncIteration):
        await read_batch(queue, 10, within=1)


async def test_with_a_limit_for_the_first_event_an_idle_queue_gives_an_empty_batch() -> None:
    queue = queue_of([])
    started = asyncio.get_running_loop().time()
    assert await read_batch(queue, 10, within=5, first_within=0.1) == []
    assert asyncio.get_running_loop().time() - started < 2
    queue.force_put_nowait(7)
    assert await read_batch(queue, 10, within=0.1, first_within=0) == [7]
