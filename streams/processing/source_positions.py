"""Where each source partition's next batch part must start, under exactly-once.

A transaction commits a part's offsets, so a part must start exactly at the partition's
committed offset and hold no hole: a record Faust's fetcher skipped would be committed past,
a record delivered twice would be processed twice. Both happen around rebalances (the seek
to the committed offsets that ends table recovery races with fetches of the previous
position), and Faust's own bookkeeping cannot tell: its committed offsets also move with
acknowledgements, and its gap tracker leaves out the offset it was seeked to.

`SourcePositions` therefore asks the broker, not Faust (the algorithm of
`streams.processing.offset_order`):

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

from typing import Any, Protocol

from faust.types import TP

from streams.processing.fetch_order import known_empty
from streams.processing.offset_order import NextRecord, OffsetOrder


class BrokerPositions(NextRecord, Protocol):
    """The broker's view of a source partition: committed offset and next record."""

    async def committed(self, tp: TP) -> int: ...


class SourcePositions:
    """The next offset of each source partition a batch part may start at (see module)."""

    def __init__(self, app: Any, broker: BrokerPositions) -> None:
        self.app = app
        self._broker = broker
        self._generations: dict[TP, int] = {}
        self._order = OffsetOrder(
            broker, self._seek, reader="exactly-once: the fetcher",
            known_empty=lambda tp, begin, end: known_empty(app.consumer.gaps(tp), begin, end))

    async def in_order(self, tp: TP, events: list[Any]) -> list[Any]:
        """The leading events of `events` (one partition's, in offset order) that continue
        exactly where the partition's previous part ended; the others are dropped.

        The next part is expected after the last event returned: a part that fails to
        commit stops the worker (see streams.processing.transactions)."""
        generation = events[0].message.generation_id
        if self._generations.get(tp) != generation:
            self._order.expect(tp, await self._broker.committed(tp))
            self._generations[tp] = generation
        first = events[0].message.offset
        if self._order.expected(tp) == first and [
                event.message.offset for event in events] == list(
                    range(first, first + len(events))):
            # the common case, checked without an await per record: each at its place
            self._order.expect(tp, first + len(events))
            return events
        # after a hole the rest is dropped: nothing of it is the missing record
        return [event for event in events
                if await self._order.admit(tp, event.message.offset)]

    async def _seek(self, tp: TP, offset: int) -> None:
        await self.app.consumer.seek(tp, offset)
