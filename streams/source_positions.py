"""Where each source partition's next batch part must start, under exactly-once.

A transaction commits a part's offsets, so a part must start exactly at the partition's
committed offset and hold no hole: a record Faust's fetcher skipped would be committed past,
a record delivered twice would be processed twice. Both happen around rebalances (the seek
to the committed offsets that ends table recovery races with fetches of the previous
position), and Faust's own bookkeeping cannot tell: its committed offsets also move with
acknowledgements, and its gap tracker leaves out the offset it was seeked to.

`SourcePositions` therefore asks the broker, not Faust:

- at the first part of each consumer generation, the group's committed offset;
- when a part does not start where the previous one ended (or skips offsets Faust's gap
  tracker does not know as empty), which committed record really comes next, by reading
  the partition with read_committed from there. Offsets without a record (transaction
  markers, aborted or compacted records) are fine; missing records are fetched again by
  seeking the worker's consumer back to them, and the part stops before the hole.

Records before the committed offset are dropped (they were processed and committed), as are
records after a hole until the consumer delivers the hole's first record again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.types import TP
from prometheus_client import Counter

from streams.errors import StreamsError
from streams.monitoring_broker import client_options

log = logging.getLogger(__name__)

REFETCHES = Counter(
    "streams_source_refetches",
    "Times a source partition was seeked back because records were not delivered in order")
DROPPED = Counter(
    "streams_source_records_dropped",
    "Source records dropped unprocessed because they were committed already (delivered "
    "again) or came after records not delivered yet", ["reason"])

PROBE_TIMEOUT_S = 30.0


class PositionUnknownError(StreamsError):
    """The broker did not say where a source partition stands in time."""


@dataclass
class _Position:
    generation: int
    next_offset: int
    # set after a seek back: records are dropped until this offset is delivered again
    awaiting: int | None = None


class SourcePositions:
    """The next offset of each source partition a batch part may start at (see module)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._positions: dict[TP, _Position] = {}
        self._broker = _BrokerReader(app)

    async def in_order(self, tp: TP, events: list[Any]) -> list[Any]:
        """The leading events of `events` (one partition's, in offset order) that continue
        exactly where the partition's previous part ended; the others are dropped.

        The next part is expected after the last event returned: a part that fails to
        commit stops the worker (see streams.transactions)."""
        position = await self._position(tp, events[0].message.generation_id)
        accepted: list[Any] = []
        for event in events:
            offset = event.message.offset
            if position.awaiting is not None:
                if offset != position.awaiting:
                    DROPPED.labels("after_missing").inc()
                    continue
                position.awaiting = None
            if offset < position.next_offset:
                DROPPED.labels("committed_already").inc()
                continue
            if offset > position.next_offset and not self._known_empty(
                    tp, position.next_offset, offset):
                following = await self._broker.first_offset(tp, position.next_offset)
                if following < offset:
                    await self._refetch(tp, position, following, offset)
                    DROPPED.labels("after_missing").inc(len(events) - len(accepted) - 1)
                    return accepted
            accepted.append(event)
            position.next_offset = offset + 1
        return accepted

    async def _position(self, tp: TP, generation: int) -> _Position:
        position = self._positions.get(tp)
        if position is None or position.generation != generation:
            committed = await self._broker.committed(tp)
            position = self._positions[tp] = _Position(generation, committed)
        return position

    def _known_empty(self, tp: TP, begin: int, end: int) -> bool:
        """True if Faust's fetcher saw no record at any offset in [begin, end)."""
        cursor = begin
        for gap in sorted(self.app.consumer._gap[tp].overlap(begin, end)):
            if gap.begin > cursor:
                return False
            cursor = max(cursor, gap.end)
        return cursor >= end

    async def _refetch(self, tp: TP, position: _Position, missing: int, seen: int) -> None:
        log.warning("exactly-once: %s[%d] delivered offset %d but the next committed record "
                    "is at %d; fetching again from there", tp.topic, tp.partition, seen,
                    missing)
        REFETCHES.inc()
        position.awaiting = missing
        await self.app.consumer.seek(tp, missing)


class _BrokerReader:
    """A read_committed client of the app's group, started on first use (rarely needed:
    once per partition per rebalance, and when records come out of order)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def committed(self, tp: TP) -> int:
        """The group's committed offset of `tp` (0 if none: the topic is read from its
        start, see `auto.offset.reset`, so the first record decides)."""
        async with self._lock:
            consumer = await self._started()
            try:
                offset = await asyncio.wait_for(consumer.committed(tp), PROBE_TIMEOUT_S)
            except Exception as exc:
                raise PositionUnknownError(
                    f"{tp.topic}[{tp.partition}]: cannot read the committed offset of group "
                    f"{self.app.conf.id}: {type(exc).__name__}: {exc}") from exc
            return offset or 0

    async def first_offset(self, tp: TP, start: int) -> int:
        """The offset of the first committed record of `tp` at or after `start`."""
        async with self._lock:
            consumer = await self._started()
            consumer.assign([tp])
            consumer.seek(tp, start)
            deadline = time.monotonic() + PROBE_TIMEOUT_S
            while time.monotonic() < deadline:
                batches = await consumer.getmany(tp, timeout_ms=500, max_records=1)
                for records in batches.values():
                    if records:
                        return int(records[0].offset)
            raise PositionUnknownError(
                f"{tp.topic}[{tp.partition}]: no committed record at or after offset "
                f"{start} within {PROBE_TIMEOUT_S:.0f}s")

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            options = client_options(self.app, PROBE_TIMEOUT_S)
            options["client_id"] = f"{self.app.conf.id}-positions"
            consumer = AIOKafkaConsumer(
                **options, group_id=self.app.conf.id, enable_auto_commit=False,
                isolation_level="read_committed")
            await consumer.start()
            self._consumer = consumer
        return self._consumer
