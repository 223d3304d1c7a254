"""Source records are delivered in offset order, and a skipped record is fetched again."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP
from intervaltree import IntervalTree

from streams.processing.fetch_order import fetch_order, known_empty

SOURCE = TP("items", 0)


class FakeConsumer:
    """What the fetch order check uses of the consumer: seeks and noting offsets without
    records."""

    def __init__(self, records: list[int]) -> None:
        self.app = SimpleNamespace()
        self.seeks: list[int] = []
        self._gap: defaultdict[TP, IntervalTree] = defaultdict(IntervalTree)
        self.probes: list[int] = []

        async def first_offset(tp: TP, start: int) -> int:
            self.probes.append(start)
            return min(offset for offset in records if offset >= start)

        self.order = fetch_order(self, SimpleNamespace(first_offset=first_offset))

    def note_no_records(self, tp: TP, begin: int, end: int) -> None:
        self._gap[tp].addi(begin, end)
        self._gap[tp].merge_overlaps()

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append(offset)
        self.order.expect(tp, offset)

    @property
    def gaps(self) -> list[tuple[int, int]]:
        return sorted((gap.begin, gap.end) for gap in self._gap[SOURCE])

    def delivered(self, *offsets: int) -> list[int]:
        async def admit_all() -> list[int]:
            return [o for o in offsets if await self.order.admit(SOURCE, o)]
        return asyncio.run(admit_all())


def test_records_in_order_pass_without_asking_the_broker() -> None:
    consumer = FakeConsumer(records=list(range(100)))
    consumer.order.expect(SOURCE, 10)
    assert consumer.delivered(10, 11, 12) == [10, 11, 12]
    assert consumer.probes == [] and consumer.gaps == [] and consumer.seeks == []


def test_a_jump_over_offsets_without_records_is_a_gap_faust_may_commit_past() -> None:
    consumer = FakeConsumer(records=[10, 11, 14, 15])  # 12, 13: transaction markers
    consumer.order.expect(SOURCE, 10)
    assert consumer.delivered(10, 11, 14, 15) == [10, 11, 14, 15]
    assert consumer.probes == [12]
    assert consumer.gaps == [(12, 14)]


def test_skipped_records_are_fetched_again_and_nothing_after_them_passes_first() -> None:
    consumer = FakeConsumer(records=list(range(100)))
    consumer.order.expect(SOURCE, 10)
    # the fetcher lost 12..18: no gap is noted, the partition is fetched again from 12
    assert consumer.delivered(10, 11, 19, 20) == [10, 11]
    assert consumer.seeks == [12]
    assert consumer.gaps == []
    assert consumer.delivered(21, 12, 13) == [12, 13]


def test_records_delivered_again_without_a_seek_are_dropped() -> None:
    consumer = FakeConsumer(records=list(range(100)))
    consumer.order.expect(SOURCE, 10)
    assert consumer.delivered(10, 11, 11, 10, 12) == [10, 11, 12]


def test_a_seek_or_a_revoke_resets_what_comes_next() -> None:
    consumer = FakeConsumer(records=list(range(100)))
    consumer.order.expect(SOURCE, 10)
    assert consumer.delivered(10, 11) == [10, 11]
    consumer.order.expect(SOURCE, 5)   # an explicit seek back
    assert consumer.delivered(5, 6) == [5, 6]
    consumer.order.forget([SOURCE])    # revoked: the first record decides
    assert consumer.delivered(40) == [40]
    assert consumer.probes == []


def test_known_empty_needs_every_offset_covered() -> None:
    gaps = IntervalTree()
    gaps.addi(12, 14)
    gaps.addi(14, 16)
    assert known_empty(gaps, 12, 16) and known_empty(gaps, 13, 15)
    assert not known_empty(gaps, 11, 14) and not known_empty(gaps, 12, 17)
