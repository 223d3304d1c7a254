"""Fetch only while the batch agents' queues have room (streams.processing.back_pressure)."""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent, ThrowableQueue

from streams.processing.back_pressure import wait_for_room


def queue_with(records: int, maxsize: int = 100) -> ThrowableQueue[int]:
    flow = FlowControlEvent()
    flow.resume()
    queue: ThrowableQueue[int] = ThrowableQueue(maxsize=maxsize, flow_control=flow)
    for n in range(records):
        queue.force_put_nowait(n)
    return queue


async def test_below_the_high_mark_a_fetch_does_not_wait() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    queues = {"orders": [queue_with(79)]}  # high mark: 100 / 1.25 = 80
    assert await wait_for_room(queues, sleep=sleep) == {}
    assert slept == []


async def test_a_full_queue_holds_the_fetch_until_the_agent_takes_from_it() -> None:
    full = queue_with(90)
    waits = 0

    async def agent_takes(seconds: float) -> None:
        nonlocal waits
        waits += 1
        if waits == 3:  # the agent takes a batch
            for _ in range(20):
                full.get_nowait()

    assert await wait_for_room({"orders": [full], "other": [queue_with(1)]},
                               sleep=agent_takes) == {}
    assert waits == 3


async def test_a_queue_still_full_after_the_wait_is_returned_for_a_pause() -> None:
    stuck, fine = queue_with(90), queue_with(10)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    full = await wait_for_room({"orders": [stuck], "payments": [fine]}, wait_s=0.05,
                               poll_s=0.01, sleep=sleep)
    assert full == {"orders": [stuck]}
    assert len(slept) == 5  # bounded: 0.05 s in 0.01 s steps
