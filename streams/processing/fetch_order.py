"""Records of each source partition reach the agents in offset order, and none is skipped.

Faust's fetch loop takes any jump in a partition's offsets for offsets without a record
(transaction markers, compacted or aborted records) and notes it as a gap its commits pass
over. But its fetcher can also skip records it fetched: around rebalances, records are
dropped between the fetch and the loop while the client's position has moved on. A
3-worker kill -9 run lost 7 records that way, at-least-once: one worker's batches in one
consumer generation went from offset 31476 to 31484, and the commit passed the hole.

`FetchOrder` checks every jump with the broker (`BrokerReader.first_offset`, read like the
worker's consumer reads) before the records after it are delivered:

- no record in between: the jump is noted as Faust's gap, as before (the committed offset
  included, which Faust leaves out: see `BatchingConsumer._new_offset`);
- records in between: the partition is seeked back to the first of them and what was
  fetched after the hole is dropped until that record arrives again.

Records before the expected offset (delivered again) are dropped too. The expected offset
follows the consumer's seeks, the seek to the committed offsets at the end of each
rebalance included, and is forgotten when the partition is revoked. The fetch loop
(streams.processing.consumer) only asks about records it delivers: of the current consumer
generation, once the rebalance has ended.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from faust.types import TP

from streams.kafka.broker_reader import BrokerReader
from streams.observability.metrics import SOURCE_RECORDS_DROPPED, SOURCE_REFETCHES

log = logging.getLogger(__name__)


class FetchOrder:
    """The next offset each source partition must deliver (see module)."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self._next: dict[TP, int] = {}
        self._awaiting: dict[TP, int] = {}
        self._broker: BrokerReader | None = None

    def expect(self, tp: TP, offset: int) -> None:
        """The consumer was seeked to `offset`: it comes next."""
        self._next[tp] = offset

    def forget(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._next.pop(tp, None)
            self._awaiting.pop(tp, None)

    async def admit(self, tp: TP, offset: int) -> bool:
        """Whether the record at `offset` of `tp` is the next to deliver."""
        awaiting = self._awaiting.get(tp)
        if awaiting is not None:
            if offset != awaiting:
                SOURCE_RECORDS_DROPPED.labels("after_missing").inc()
                return False
            del self._awaiting[tp]
        else:
            expected = self._next.get(tp)
            if expected is not None and offset != expected:
                if offset < expected:
                    SOURCE_RECORDS_DROPPED.labels("committed_already").inc()
                    return False
                following = await self._broker_reader().first_offset(tp, expected)
                if self._next.get(tp) != expected or tp in self._awaiting:
                    return False  # seeked or revoked meanwhile: the record comes again
                if following < offset:
                    await self._refetch(tp, following, offset)
                    return False
                # not Faust's _add_gap: it leaves out the committed offset itself
                gaps = self._consumer._gap[tp]
                gaps.addi(expected, offset)
                gaps.merge_overlaps()
        self._next[tp] = offset + 1
        return True

    async def _refetch(self, tp: TP, missing: int, seen: int) -> None:
        log.warning("%s[%d]: the fetcher delivered offset %d, but the next record is at %d; "
                    "fetching again from there", tp.topic, tp.partition, seen, missing)
        SOURCE_REFETCHES.inc()
        SOURCE_RECORDS_DROPPED.labels("after_missing").inc()
        await self._consumer.seek(tp, missing)  # -> expect(tp, missing)
        self._awaiting[tp] = missing

    def _broker_reader(self) -> BrokerReader:
        if self._broker is None:
            self._broker = BrokerReader(self._consumer.app)
        return self._broker


def known_empty(gaps: Any, begin: int, end: int) -> bool:
    """True if the gap intervals `gaps` (Faust's IntervalTree of offsets without a record)
    cover every offset in [begin, end)."""
    cursor = begin
    for gap in sorted(gaps.overlap(begin, end)):
        if gap.begin > cursor:
            return False
        cursor = max(cursor, gap.end)
    return cursor >= end
