"""Back-pressure for batch agents: fetch only while their queues have room.

Faust pauses a partition as soon as its agent's queue passes the high mark
(`stream_buffer_maxsize` / 1.25), and a paused partition loses what the consumer had
prefetched for it (aiokafka drops it), so every pause costs a fetch again. With small
records nearly every fetch paused: half of a sink job's throughput went that way.

So the fetch loop waits before fetching while a batch agent's queue is at or past its
high mark (`wait_for_room`): the prefetched records stay with the consumer, and a queue
holds at most one fetch more than its mark. The wait is bounded (`ROOM_WAIT_S`), so that
other topics are not held up for long and an agent that stopped taking (a transient
failure may wait for up to an hour) falls back to Faust's pause of its partitions, which
keeps the consumer polling the group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

#: How long a fetch waits for room in full batch-agent queues, and how often it looks.
ROOM_WAIT_S = 1.0
ROOM_POLL_S = 0.005


def is_full(queue: Any) -> bool:
    """Whether a mode flow-control queue is at or past its high mark."""
    return bool(queue.qsize() >= queue.pressure_high_size)


async def wait_for_room(queues: Mapping[str, Sequence[Any]], *, wait_s: float = ROOM_WAIT_S,
                        poll_s: float = ROOM_POLL_S, stopping: Callable[[], bool] = bool,
                        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                        ) -> dict[str, list[Any]]:
    """Wait until no queue of `queues` (by topic) is full, for up to `wait_s`; return the
    queues still full then, by topic (empty: there is room)."""
    waited = 0.0
    while True:
        full = {topic: [queue for queue in topic_queues if is_full(queue)]
                for topic, topic_queues in queues.items()}
        full = {topic: topic_queues for topic, topic_queues in full.items() if topic_queues}
        if not full or waited >= wait_s or stopping():
            return full
        await sleep(poll_s)
        waited += poll_s
