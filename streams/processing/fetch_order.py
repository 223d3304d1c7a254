"""Records of each source partition reach the agents in offset order, and none is skipped.

Faust's fetch loop takes any jump in a partition's offsets for offsets without a record
(transaction markers, compacted or aborted records) and notes it as a gap its commits pass
over. But its fetcher can also skip records it fetched: around rebalances, records are
dropped between the fetch and the loop while the client's position has moved on. A
3-worker kill -9 run lost 7 records that way, at-least-once: one worker's batches in one
consumer generation went from offset 31476 to 31484, and the commit passed the hole.

`fetch_order` checks every jump with the broker (`BrokerReader.first_offset`, read like the
worker's consumer reads) before the records after it are delivered, with the algorithm of
`streams.processing.offset_order`:

- no record in between: the jump is noted as Faust's gap, as before (the committed offset
  included, which Faust leaves out: see `BatchingConsumer.may_commit`);
- records in between: the partition is seeked back to the first of them and what was
  fetched after the hole is dropped until that record arrives again.

Records before the expected offset (delivered again) are dropped too. The expected offset
follows the consumer's seeks, the seek to the committed offsets at the end of each
rebalance included, and is forgotten when the partition is revoked. The fetch loop
(streams.processing.consumer) only asks about records it delivers: of the current consumer
generation, once the rebalance has ended.
"""

from __future__ import annotations

from typing import Any

from streams._faust.consumer import HookedConsumer
from streams.processing.offset_order import NextRecord, OffsetOrder


def fetch_order(consumer: HookedConsumer, broker: NextRecord) -> OffsetOrder:
    """The order check of the fetch loop of `consumer` (Faust's consumer: its seeks, and
    its gap tracker, which learns of the ranges the broker says hold no record)."""
    return OffsetOrder(broker, consumer.seek, on_empty=consumer.note_no_records)


def known_empty(gaps: Any, begin: int, end: int) -> bool:
    """True if the gap intervals `gaps` (Faust's IntervalTree of offsets without a record)
    cover every offset in [begin, end)."""
    cursor = begin
    for gap in sorted(gaps.overlap(begin, end)):
        if gap.begin > cursor:
            return False
        cursor = max(cursor, gap.end)
    return cursor >= end
