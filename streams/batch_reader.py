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
- every event handed out is tracked as unacknowledged by the consumer, which is what its
  graceful stop and rebalances wait for.

The queue is Faust's flow-controlled queue: `get_nowait` also re-enables fetching of a
partition paused for back-pressure, and a rebalance clears it.
"""

from __future__ import annotations

import asyncio
from typing import Any


class BatchReader:
    """Reads batches of events from one agent's topic channel."""

    def __init__(self, app: Any, channel: Any, max_size: int, within: float) -> None:
        self._app = app
        self._channel = channel  # keeps the channel subscribed (held weakly by Faust)
        self._max_size = max_size
        self._within = within

    async def next_batch(self) -> list[Any]:
        """The next non-empty batch of current events, each tracked by the consumer."""
        while True:
            batch = self._current(await read_batch(self._channel.queue, self._max_size,
                                                   self._within))
            if batch:
                return batch

    def _current(self, events: list[Any]) -> list[Any]:
        app = self._app
        if not app.flow_control.is_active():
            return []
        generation = app.consumer_generation_id
        consumer = app.consumer
        current = []
        for event in events:
            message = event.message
            if message.generation_id != generation:
                continue
            if not message.tracked:
                message.tracked = True
                consumer.track_message(message)
            current.append(event)
        return current


async def read_batch(queue: Any, max_size: int, within: float) -> list[Any]:
    """Wait for the first event, then collect up to `max_size` events for at most
    `within` seconds; return them in arrival order."""
    batch = [await queue.get()]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(batch) < max_size:
        while not queue.empty() and len(batch) < max_size:
            batch.append(queue.get_nowait())
        if len(batch) >= max_size:
            break
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            batch.append(await asyncio.wait_for(queue.get(), remaining))
        except TimeoutError:
            break
    return batch
