"""send_batches: records of a partition in order, a new batch when one is full."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.kafka.record_batches import send_batches


class FakeBatch:
    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[Any, Any, Any]] = []

    def append(self, *, key: Any, value: Any, timestamp: Any, headers: Any) -> object | None:
        if not isinstance(headers, list):  # as aiokafka's (Cython) batch builder
            raise TypeError("Argument 'headers' has incorrect type")
        if len(self.records) >= self.room:
            return None
        self.records.append((key, value, headers))
        return object()


class FakeProducer:
    """Stands in for aiokafka's create_batch/send_batch; batches hold `room` records."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.sent: list[tuple[str, int, FakeBatch]] = []

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.room)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch))
        future = asyncio.get_running_loop().create_future()
        future.set_result(type("Metadata", (), {"offset": 100 * len(self.sent)})())
        return future


async def test_records_are_batched_per_partition_in_order() -> None:
    producer = FakeProducer(room=2)
    records = [(i % 2, f"k{i}".encode(), f"v{i}".encode(), []) for i in range(7)]
    sent = await send_batches(producer, "out", records)
    assert [(p, [r[0] for r in b.records]) for _, p, b in producer.sent] == [
        (0, [b"k0", b"k2"]), (0, [b"k4", b"k6"]), (1, [b"k1", b"k3"]), (1, [b"k5"])]
    assert [(s.partition, s.count) for s in sent] == [(0, 2), (0, 2), (1, 2), (1, 1)]
    assert [await s.last_offset() for s in sent] == [101, 201, 301, 400]


async def test_headers_travel_with_their_record() -> None:
    producer = FakeProducer(room=10)
    await send_batches(producer, "out", [(0, None, b"v", [("h", b"1")])])
    assert producer.sent[0][2].records == [(None, b"v", [("h", b"1")])]

