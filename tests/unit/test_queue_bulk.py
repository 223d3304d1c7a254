"""Putting and taking many events at once on a batch agent's queue (mode's
ThrowableQueue), as one-by-one `force_put_nowait` and `get_nowait` calls would."""

from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlEvent, ThrowableQueue

from streams._faust.consumer import put_all_nowait, take_nowait


def flowing() -> FlowControlEvent:
    flow_control = FlowControlEvent()
    flow_control.resume()
    return flow_control


async def test_a_bulk_put_wakes_the_waiting_agent_and_counts_every_item() -> None:
    queue: ThrowableQueue[int] = ThrowableQueue(maxsize=4, flow_control=flowing())
    waiting = asyncio.ensure_future(queue.get())  # the agent's first step, scheduled first
    # runs next, once the agent waits on the empty queue; past maxsize: back-pressure is
    # the fetch loop's
    asyncio.get_running_loop().call_soon(put_all_nowait, queue, [1, 2, 3, 4, 5])

    assert await asyncio.wait_for(waiting, 1) == 1
    assert queue.qsize() == 4
    assert take_nowait(queue, 3) == [2, 3, 4]
    assert take_nowait(queue, 3) == [5]
    for _ in range(5):
        queue.task_done()
    await asyncio.wait_for(queue.join(), 1)  # every item put was counted once


async def test_an_error_thrown_into_the_queue_comes_before_its_items() -> None:
    queue: ThrowableQueue[int] = ThrowableQueue(flow_control=flowing())
    put_all_nowait(queue, [1])
    await queue.throw(RuntimeError("stopping"))
    try:
        take_nowait(queue, 10)
    except RuntimeError as exc:
        assert str(exc) == "stopping"
    else:
        raise AssertionError("the error was not raised")
    assert take_nowait(queue, 10) == [1]
