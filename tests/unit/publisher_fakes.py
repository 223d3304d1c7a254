"""A stand-in for aiokafka's producer, scripted per send, for unit tests of Publisher's logic."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiokafka.structs import RecordMetadata, TopicPartition

from streams.kafka.publisher import Publisher, PublisherConfig
from streams.settings import Settings

OK = "ok"
HOLD = "hold"  # the future stays pending until released


class _Metadata:
    def __init__(self, topics: dict[str, int]) -> None:
        self._topics = topics
        self.unauthorized_topics: set[str] = set()

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self._topics.get(topic)
        return None if count is None else set(range(count))


class _Client:
    def __init__(self, topics: dict[str, int]) -> None:
        self.topics = topics

    async def fetch_all_metadata(self) -> _Metadata:
        return _Metadata(self.topics)


@dataclass(frozen=True)
class SendRefused:
    """An outcome: `send_batch` raises `error` itself (the batch was never queued)."""

    error: Exception


class FakeBatch:
    """aiokafka's `BatchBuilder` as Publisher uses it: refuses a record once full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[Any, Any, Any]] = []

    def append(self, *, key: Any, value: Any, timestamp: Any, headers: Any) -> object | None:
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value, headers))
        return object()


class FakeProducer:
    """Each `send` or `send_batch` takes the next outcome: OK, HOLD, or an exception (raised
    by the future)."""

    def __init__(self, outcomes: list[Any] | None = None, topics: dict[str, int] | None = None):
        self.outcomes = deque(outcomes or [])
        self.client = _Client(topics or {"t": 3})
        self.sent: list[dict[str, Any]] = []
        self.held: list[asyncio.Future[RecordMetadata]] = []
        self.options: dict[str, Any] = {}
        self._offsets: dict[int, int] = {}
        self.batch_records = 1000  # records a batch from create_batch takes
        self.batches: list[int] = []  # the record count of each send_batch

    def __call__(self, **options: Any) -> FakeProducer:
        self.options = options
        return self

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def flush(self) -> None:
        pending = [f for f in self.held if not f.done()]
        if pending:
            await asyncio.wait(pending)

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.client.topics[topic]))

    async def send(self, topic: str, value: Any, key: Any = None, partition: Any = None,
                   headers: Any = None) -> asyncio.Future[RecordMetadata]:
        self.sent.append({"topic": topic, "value": value, "key": key, "partition": partition,
                          "headers": headers})
        outcome = self.outcomes.popleft() if self.outcomes else OK
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        if outcome == OK:
            future.set_result(self._metadata(topic, partition))
        elif outcome == HOLD:
            self.held.append(future)
        else:
            future.set_exception(outcome)
        return future

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.batch_records)

    async def send_batch(self, batch: FakeBatch, topic: str, *,
                         partition: int) -> asyncio.Future[RecordMetadata]:
        """One outcome for the whole batch; its records are in `sent` like single sends."""
        self.batches.append(len(batch.records))
        for key, value, headers in batch.records:
            self.sent.append({"topic": topic, "value": value, "key": key,
                              "partition": partition, "headers": headers})
        outcome = self.outcomes.popleft() if self.outcomes else OK
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        if outcome == OK:
            future.set_result(self._metadata(topic, partition, len(batch.records)))
        elif outcome == HOLD:
            self.held.append(future)
        elif isinstance(outcome, SendRefused):
            raise outcome.error
        else:
            future.set_exception(outcome)
        return future

    def release(self) -> None:
        """Acknowledge the oldest held record."""
        future = self.held.pop(0)
        future.set_result(self._metadata("t", 0))

    def _metadata(self, topic: str, partition: int, count: int = 1) -> RecordMetadata:
        offset = self._offsets.get(partition, 0)
        self._offsets[partition] = offset + count
        return RecordMetadata(topic, partition, TopicPartition(topic, partition), offset,
                              -1, -1, 0)


def fast_config(**overrides: Any) -> PublisherConfig:
    values: dict[str, Any] = {"max_attempts": 4, "deadline_s": 5.0, "attempt_timeout_s": 1.0,
                              "backoff_ms": 1, "backoff_max_ms": 4, "queue_size": 100}
    values.update(overrides)
    return PublisherConfig(**values)


async def started(fake: FakeProducer, **overrides: Any) -> Publisher:
    publisher = Publisher(Settings(), fast_config(**overrides), producer_factory=fake)
    await publisher.start()
    return publisher
