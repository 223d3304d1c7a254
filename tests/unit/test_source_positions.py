"""Where an exactly-once batch part may start: records delivered twice or out of order."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from intervaltree import IntervalTree

from streams.processing.source_positions import SourcePositions

SOURCE = TP("items", 0)


def event(offset: int, generation: int = 1) -> Any:
    return SimpleNamespace(message=SimpleNamespace(
        tp=SOURCE, offset=offset, generation_id=generation))


class FakeBroker:
    """The partition as the broker has it: committed offset and offsets holding a record."""

    def __init__(self, committed: int, records: list[int]) -> None:
        self.committed_offset = committed
        self.records = records
        self.probes: list[int] = []

    async def committed(self, tp: TP) -> int:
        return self.committed_offset

    async def first_offset(self, tp: TP, start: int) -> int:
        self.probes.append(start)
        return min(offset for offset in self.records if offset >= start)


class Positions:
    def __init__(self, broker: FakeBroker, gaps: tuple[tuple[int, int], ...] = ()) -> None:
        self.seeks: list[tuple[TP, int]] = []
        trees: defaultdict[TP, IntervalTree] = defaultdict(IntervalTree)
        for begin, end in gaps:
            trees[SOURCE][begin:end] = True

        async def seek(tp: TP, offset: int) -> None:
            self.seeks.append((tp, offset))

        app = SimpleNamespace(consumer=SimpleNamespace(gaps=trees.__getitem__, seek=seek))
        self.positions = SourcePositions(app, broker)

    def take(self, *offsets: int, generation: int = 1) -> list[int]:
        events = [event(offset, generation) for offset in offsets]
        accepted = asyncio.run(self.positions.in_order(SOURCE, events))
        return [e.message.offset for e in accepted]


def test_a_part_starts_at_the_committed_offset_and_drops_what_came_again() -> None:
    positions = Positions(FakeBroker(committed=10, records=list(range(100))))
    assert positions.take(8, 9, 10, 11) == [10, 11]
    assert positions.take(11, 12, 13) == [12, 13]   # 11 delivered twice
    assert positions.seeks == []


def test_the_committed_offset_is_asked_again_in_a_new_generation() -> None:
    broker = FakeBroker(committed=10, records=list(range(100)))
    positions = Positions(broker)
    assert positions.take(10, 11) == [10, 11]
    broker.committed_offset = 30  # another worker owned the partition meanwhile
    assert positions.take(12, 13, generation=2) == []
    assert positions.take(30, 31, generation=2) == [30, 31]


def test_offsets_without_a_record_are_skipped_after_asking_the_broker() -> None:
    # 11 and 12 are transaction markers: no record there
    broker = FakeBroker(committed=10, records=[10, 13, 14])
    positions = Positions(broker)
    assert positions.take(10, 13, 14) == [10, 13, 14]
    assert broker.probes == [11]
    assert positions.seeks == []


def test_offsets_the_fetcher_saw_empty_need_no_broker_read() -> None:
    broker = FakeBroker(committed=10, records=[10, 13])
    positions = Positions(broker, gaps=((11, 13),))
    assert positions.take(10, 13) == [10, 13]
    assert broker.probes == []


def test_a_record_not_delivered_is_fetched_again_and_nothing_passes_it() -> None:
    positions = Positions(FakeBroker(committed=10, records=list(range(100))))
    # 12 and 13 were not delivered: the part stops before the hole
    assert positions.take(10, 11, 14, 15) == [10, 11]
    assert positions.seeks == [(SOURCE, 12)]
    # records fetched before the seek still arrive: dropped until 12 comes again
    assert positions.take(16, 17) == []
    assert positions.take(12, 13, 14) == [12, 13, 14]
    assert positions.take(15) == [15]


def test_a_record_delivered_twice_inside_a_part_is_dropped_and_a_hole_after_it_found(
) -> None:
    positions = Positions(FakeBroker(committed=10, records=list(range(100))))
    # as many offsets as 10..13 would be, but 11 twice and 12 missing
    assert positions.take(10, 11, 11, 13) == [10, 11]
    assert positions.seeks == [(SOURCE, 12)]
    assert positions.take(12, 13, 14) == [12, 13, 14]
