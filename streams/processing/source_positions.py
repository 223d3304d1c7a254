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

import logging
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from streams.kafka.broker_reader import BrokerReader
from streams.observability.metrics import SOURCE_RECORDS_DROPPED, SOURCE_REFETCHES
from streams.processing.fetch_order import known_empty

log = logging.getLogger(__name__)

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
        self._broker = BrokerReader(app)

    async def in_order(self, tp: TP, events: list[Any]) -> list[Any]:
        """The leading events of `events` (one partition's, in offset order) that continue
        exactly where the partition's previous part ended; the others are dropped.

        The next part is expected after the last event returned: a part that fails to
        commit stops the worker (see streams.processing.transactions)."""
        position = await self._position(tp, events[0].message.generation_id)
        accepted: list[Any] = []
        for event in events:
            offset = event.message.offset
            if position.awaiting is not None:
                if offset != position.awaiting:
                    SOURCE_RECORDS_DROPPED.labels("after_missing").inc()
                    continue
                position.awaiting = None
            if offset < position.next_offset:
                SOURCE_RECORDS_DROPPED.labels("committed_already").inc()
                continue
            if offset > position.next_offset and not known_empty(
                    self.app.consumer._gap[tp], position.next_offset, offset):
                following = await self._broker.first_offset(tp, position.next_offset)
                if following < offset:
                    await self._refetch(tp, position, following, offset)
                    SOURCE_RECORDS_DROPPED.labels("after_missing").inc(
                        len(events) - len(accepted) - 1)
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

    async def _refetch(self, tp: TP, position: _Position, missing: int, seen: int) -> None:
        log.warning("exactly-once: %s[%d] delivered offset %d but the next committed record "
                    "is at %d; fetching again from there", tp.topic, tp.partition, seen,
                    missing)
        SOURCE_REFETCHES.inc()
        position.awaiting = missing
        await self.app.consumer.seek(tp, missing)
