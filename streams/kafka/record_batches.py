"""Sending many records at once: one record batch per partition, one future per batch.

A record sent on its own through a producer gets its own future, its own callback and its
own trip through the producer's accumulator; for the hundreds of records a batch handler
publishes at a time that per-record overhead cost more than the handler. Here the records
of a partition are appended to a `BatchBuilder` and handed to the producer in one
`send_batch` (a new batch when one is full), and the caller awaits one future per batch.
The producer's acks, idempotence and transaction (a transactional producer adds the
partition to its open transaction) apply as for single sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

#: (partition, key, value, headers); aiokafka's batch builder wants the headers as a list
Record = tuple[int, bytes | None, bytes | None, list[tuple[str, bytes]]]


class BatchProducer(Protocol):
    """What `send_batches` needs of a producer: aiokafka's `AIOKafkaProducer` has it."""

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any: ...

    async def partitions_for(self, topic: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class SentBatch:
    """One record batch on its way: `await batch.future` gives its base offset."""

    partition: int
    count: int
    future: asyncio.Future[Any]

    async def last_offset(self) -> int:
        """Wait for the acknowledgement; the offset of the batch's last record."""
        metadata = await self.future
        return int(metadata.offset) + self.count - 1


async def send_batches(producer: BatchProducer, topic: str, records: Iterable[Record],
                       ) -> list[SentBatch]:
    """Hand `records` to the aiokafka `producer` as record batches, in order per partition.

    Returns once every batch is queued (waiting for room in the producer's queue, as
    `send` does); the caller awaits the acknowledgements.
    """
    by_partition: dict[int, list[Record]] = {}
    for record in records:
        by_partition.setdefault(record[0], []).append(record)
    sent = []
    for partition, items in by_partition.items():
        for batch, count in filled_batches(
                producer, ((key, value, headers) for _, key, value, headers in items)):
            sent.append(SentBatch(partition, count, await producer.send_batch(
                batch, topic, partition=partition)))
    return sent


def filled_batches(producer: BatchProducer,
                   records: Iterable[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]
                   ) -> Iterator[tuple[Any, int]]:
    """`records` (key, value, headers) appended in order to the producer's record batches:
    each batch with its record count, once it is full or the records end."""
    batch, count = producer.create_batch(), 0
    for key, value, headers in records:
        while batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            yield batch, count
            batch, count = producer.create_batch(), 0
        count += 1
    if count:
        yield batch, count
