"""Handling the next batches while earlier ones are acknowledged, and committing the
table changes of many batches together.

A batch is done when its sink records and table changes are acknowledged by the brokers
(acks=all) and its table changes are in the local store; only then are its records
acknowledged to Faust, which may then commit their offsets.

Batches are committed in windows of up to `COMMIT_INTERVAL_MS` (the model of Kafka
Streams' record cache and `commit.interval.ms`; by default 1 s, 0 makes each batch its
own window): the table changes of every batch handled within the window are gathered in
one `PendingWrites`, where a key changed by many batches keeps only its last value. When
the window closes, its changes go to the changelogs, then to the stores, and the records
of all its batches are acknowledged. A key changed in every batch costs one changelog
record and one RocksDB write per window, not per batch. Sink records are still sent with
each batch; their acknowledgements are awaited when the window finishes.

A window closes early when gathering more gains nothing:

- after a batch that changed no table (so far in the window): there is nothing to
  coalesce, and holding the acknowledgements back would only delay the commit;
- when its agent has caught up: it has handled every record its partitions held at
  their last fetch, or no record came for 0.1 s (streams.processing.agents);
- when its partitions are being given up: a rebalance or shutdown waits for it.

`BatchPipeline` hands a closed window's changes to the producer, then waits for the
acknowledgements in a task of its own while the agent fills the next window. What stays
strictly in order:

- windows finish in the order they were opened: a window's store writes and record
  acknowledgements wait for the previous window to finish (so offsets are acknowledged
  in order, and a key's last value is the one stored);
- at most one window is in flight: closing the next one waits for it;
- the handler reads the changes of the open window and of the window in flight
  (`PendingWrites(previous=...)`), not the older stored values; so do table lookups
  (`streams.state.writes.latest_change`);
- a batch that raises (abandoned, or stopping the worker) leaves nothing in the window:
  its changes are rolled back, its records are not acknowledged;
- a window whose acknowledgements fail is not acknowledged, nor is any window after it;
  the failure stops the worker as it did before, and the records come back after a
  restart.

Under exactly-once there is no pipeline: each batch part is its own transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from streams.processing.processor import BatchProcessor
from streams.state import writes as table_writes

Failure = Callable[[BaseException], Awaitable[None]]


class PipelineStopped(Exception):
    """An earlier window failed to finish; its failure was already reported."""


class _Window:
    """The batches handled since the window opened, not yet committed."""

    def __init__(self, writes: table_writes.PendingWrites, closes_at: float) -> None:
        self.writes = writes
        self.closes_at = closes_at
        self.events: list[Any] = []
        self.sink_acknowledged: list[Awaitable[object]] = []


class BatchPipeline:
    """The batches of one agent between being handled and being acknowledged."""

    def __init__(self, app: Any, processor: BatchProcessor,
                 acknowledge: Callable[[Sequence[Any]], None], on_failure: Failure,
                 commit_interval: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._processor = processor
        self._acknowledge = acknowledge
        self._on_failure = on_failure
        self._commit_interval = commit_interval
        self._clock = clock
        self._open: _Window | None = None
        self._in_flight: asyncio.Task[None] | None = None
        self._in_flight_writes: table_writes.PendingWrites | None = None
        self._failed = False

    def seconds_to_commit(self) -> float | None:
        """How long until the open window is due to close (None: no window is open)."""
        if self._open is None:
            return None
        return max(self._open.closes_at - self._clock(), 0.0)

    async def submit(self, events: Sequence[Any]) -> None:
        """Handle `events` into the open window and hand their sink records to the
        producer; close the window if it is due or holds no table change.

        Raises what handling raised (nothing of the batch stays in the window then), or
        `PipelineStopped` if an earlier window failed to finish.
        """
        if self._failed:
            raise PipelineStopped
        window = self._open
        if window is None:
            writes = table_writes.PendingWrites(previous=self._in_flight_writes)
            window = self._open = _Window(writes, self._clock() + self._commit_interval)
            table_writes.register_live(writes)
        before = window.writes.savepoint()
        try:
            with table_writes.collecting(window.writes):
                sink_acknowledged = await self._processor.start(events)
        except BaseException:
            window.writes.rollback(before)
            raise
        window.writes.keep()
        window.events.extend(events)
        window.sink_acknowledged.append(sink_acknowledged)
        if not window.writes or self._clock() >= window.closes_at:
            await self.commit()

    async def commit(self) -> None:
        """Close the open window: send its changes, and finish it in the background once
        the window before it has finished (waited for here: one window in flight)."""
        window, self._open = self._open, None
        if window is None:
            return
        if not window.events:
            table_writes.unregister_live(window.writes)
            return
        older = self._in_flight
        await window.writes.send(self._app)
        self._in_flight = asyncio.create_task(self._finish(window, older))
        self._in_flight_writes = window.writes
        if older is not None:
            await asyncio.shield(older)
            if self._failed:
                raise PipelineStopped

    async def drain(self) -> None:
        """Commit the open window and wait until it is finished (or failed)."""
        await self.commit()
        if self._in_flight is not None:
            await asyncio.shield(self._in_flight)

    def cancel(self) -> None:
        """Stop waiting for the window in flight; it and the open one stay
        unacknowledged."""
        if self._open is not None:
            table_writes.unregister_live(self._open.writes)
            self._open = None
        if self._in_flight is not None:
            self._in_flight.cancel()
        if self._in_flight_writes is not None:
            table_writes.unregister_live(self._in_flight_writes)

    async def _finish(self, window: _Window, previous: asyncio.Task[None] | None) -> None:
        try:
            await asyncio.gather(*window.sink_acknowledged)
            if previous is not None:
                await previous
            if self._failed:
                return
            await window.writes.finish(self._app)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._failed:
                self._failed = True
                await self._on_failure(exc)
            return
        finally:
            table_writes.unregister_live(window.writes)
        if self._in_flight_writes is window.writes:
            self._in_flight_writes = None
        self._acknowledge(window.events)
