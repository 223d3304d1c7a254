"""Batches straight from the queue Faust's conductor fills for a topic.

Faust's `Stream.noack_take` gives the same batches (up to `max_size` events, or what
arrived within `within` seconds of the first), but passes every event through the stream
machinery first: a task switch, a `wait_first` over the queue and the stop event, the
current-event bookkeeping and a processor callback, per event. For a batch handler that
per-event path cost more than the whole batch's decoding and table work, so the agent
takes the events from the channel's queue itself, in bulk.

What the stream does per event and a batch must do too (faust/streams.py `_c_aiter`):

- an event fetched before the last rebalance (another consumer generation), or while
  flow control is suspended for one, is dropped unacknowledged: its partition may belong
  to another worker now, and if it is still ours the consumer fetches it again from the
  committed offset;
- every event taken is tracked as unacknowledged by the consumer at once, which is what
  its graceful stop and rebalances wait for.

The queue is Faust's flow-controlled queue: `get_nowait` also re-enables fetching of a
partition paused for back-pressure, and a rebalance clears it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from streams._faust.consumer import take_nowait
from streams._faust.events import track_all


class BatchReader:
    """Reads batches of events from one agent's topic channel."""

    def __init__(self, app: Any, channel: Any, max_size: int, within: float) -> None:
        self._app = app
        self._channel = channel  # keeps the channel subscribed (held weakly by Faust)
        self._max_size = max_size
        self._within = within

    async def next_batch(self, first_within: float | None = None) -> list[Any]:
        """The next non-empty batch of current events, each tracked by the consumer; or
        an empty one if no event came within `first_within` seconds (None: no limit)."""
        return await read_batch(self._channel.queue, self._max_size, self._within,
                                self._take, first_within)

    def empty(self) -> bool:
        """Whether no event waits to be taken."""
        return bool(self._channel.queue.empty())

    def _take(self, events: list[Any]) -> list[Any]:
        """Those of `events` that are current, each tracked as taken and not yet
        acknowledged.

        Tracking at once, not when the batch is complete, is what makes a rebalance wait
        for the batch being collected (as for Faust's `noack_take`): otherwise its offsets
        would be committed without it and its records handled twice.
        """
        app = self._app
        if not app.flow_control.is_active():
            return []
        generation = app.consumer_generation_id
        current = [event for event in events if event.message.generation_id == generation]
        track_all(app.consumer, [event.message for event in current])
        return current


def _all(events: list[Any]) -> list[Any]:
    return events


async def read_batch(queue: Any, max_size: int, within: float,
                     take: Callable[[list[Any]], list[Any]] = _all,
                     first_within: float | None = None) -> list[Any]:
    """Wait for the first event `take` accepts, then collect up to `max_size` accepted
    events for at most `within` seconds; return them in arrival order. If none is
    accepted within `first_within` seconds (None: no limit), return an empty batch.

    `take` gets the events as they come off the queue and returns those accepted.
    """
    loop = asyncio.get_running_loop()
    batch: list[Any] = []
    if first_within is None:
        while not batch:
            batch = take([await queue.get()])
    else:
        first_deadline = loop.time() + first_within
        while not batch:
            if queue.empty():
                try:
                    event = await asyncio.wait_for(queue.get(),
                                                   first_deadline - loop.time())
                except TimeoutError:
                    return []
                batch = take([event])
            else:
                batch = take(take_nowait(queue, max_size))
    deadline = loop.time() + within
    while len(batch) < max_size:
        if not queue.empty():
            batch += take(take_nowait(queue, max_size - len(batch)))
            continue
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            event = await asyncio.wait_for(queue.get(), remaining)
        except TimeoutError:
            break
        batch += take([event])
    return batch
