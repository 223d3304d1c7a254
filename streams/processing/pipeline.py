"""Handling the next batch while the last one's acknowledgements are on their way.

A batch is done when its sink records and table changes are acknowledged by the brokers
(acks=all) and its table changes are in the local store; only then are its records
acknowledged to Faust, which may then commit their offsets. Waiting for that before
taking the next batch left the worker idle for a round trip to the brokers per batch
(a fifth of a sink agent's time). `BatchPipeline` hands a batch's records to the producer,
then waits for the acknowledgements in a task of its own while the agent takes and
handles the next batch. What stays strictly in order:

- batches finish in the order they were taken: a batch's store writes and record
  acknowledgements wait for the previous batch to finish (so offsets are acknowledged
  in order, and a key's last value is the one stored);
- at most one batch is in flight: the next but one waits for it;
- the handler of the next batch reads the table changes of the batch in flight
  (`PendingWrites(previous=...)`), not the older stored values;
- a batch whose acknowledgements fail is not acknowledged, nor is any batch after it;
  the failure stops the worker as it did before, and the records come back after a
  restart.

Under exactly-once there is no pipeline: each batch part is its own transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from streams.processing.processor import BatchProcessor
from streams.state import writes as table_writes

Failure = Callable[[BaseException], Awaitable[None]]


class PipelineStopped(Exception):
    """An earlier batch failed to finish; its failure was already reported."""


class BatchPipeline:
    """The batches of one agent between being handled and being acknowledged."""

    def __init__(self, app: Any, processor: BatchProcessor,
                 acknowledge: Callable[[Sequence[Any]], None], on_failure: Failure) -> None:
        self._app = app
        self._processor = processor
        self._acknowledge = acknowledge
        self._on_failure = on_failure
        self._in_flight: asyncio.Task[None] | None = None
        self._in_flight_writes: table_writes.PendingWrites | None = None
        self._failed = False

    async def submit(self, events: Sequence[Any]) -> None:
        """Handle `events` and hand their records to the producer; their acknowledgement
        (and then the events') follows in the background.

        Raises what handling raised (nothing of the batch is acknowledged then), or
        `PipelineStopped` if an earlier batch failed to finish.
        """
        older = self._in_flight
        if self._failed:
            raise PipelineStopped
        writes = table_writes.PendingWrites(previous=self._in_flight_writes)
        with table_writes.collecting(writes):
            sink_acknowledged = await self._processor.start(events)
        await writes.send(self._app)
        self._in_flight = asyncio.create_task(
            self._finish(events, sink_acknowledged, writes, older))
        self._in_flight_writes = writes
        if older is not None:
            await asyncio.shield(older)  # at most one batch in flight
            if self._failed:
                raise PipelineStopped

    async def drain(self) -> None:
        """Wait until the batch in flight is finished (or failed)."""
        if self._in_flight is not None:
            await asyncio.shield(self._in_flight)

    def cancel(self) -> None:
        """Stop waiting for the batch in flight; it stays unacknowledged."""
        if self._in_flight is not None:
            self._in_flight.cancel()

    async def _finish(self, events: Sequence[Any], sink_acknowledged: Awaitable[object],
                      writes: table_writes.PendingWrites,
                      previous: asyncio.Task[None] | None) -> None:
        try:
            await sink_acknowledged
            if previous is not None:
                await previous
            if self._failed:
                return
            await writes.finish(self._app)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._failed:
                self._failed = True
                await self._on_failure(exc)
            return
        if self._in_flight_writes is writes:
            self._in_flight_writes = None
        self._acknowledge(events)
