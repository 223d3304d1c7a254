"""Changelog records Faust drops from its recovery queue are fetched again.

Faust empties the recovery queue whenever the flow resumes, also after it has seeked the
standby partitions; what was queued then was lost to the standby store for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

import pytest
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message

from streams import Settings, create_app
from streams._faust.recovery import ChangelogQueue
from streams.processing.consumer import BatchingConsumer

STANDBY = TP("app-counts-changelog", 1)
OTHER = TP("app-counts-changelog", 2)
SOURCE = TP("updates", 0)


@pytest.fixture
def seeks(monkeypatch: pytest.MonkeyPatch) -> list[dict[TP, int]]:
    """The seeks made in the consumer's thread (Faust's `seek_wait`)."""
    made: list[dict[TP, int]] = []

    async def seek_wait(self: AIOKafkaConsumer, partitions: Mapping[TP, int]) -> None:
        made.append(dict(partitions))

    monkeypatch.setattr(AIOKafkaConsumer, "seek_wait", seek_wait)
    return made


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchingConsumer]:
    app = create_app(Settings.from_env({"TABLE_STORE": "rocksdb"}), agents=[], tables=[])
    consumer = app.consumer
    assert isinstance(consumer, BatchingConsumer)
    monkeypatch.setattr(consumer, "assignment", lambda: {STANDBY, OTHER, SOURCE})
    assert isinstance(app.tables.changelog_queue, ChangelogQueue)  # made with the tables
    yield consumer


def record(tp: TP, offset: int) -> Message:
    return Message(tp.topic, tp.partition, offset, 0.0, 0, {}, b"k", b"1", None)


def hand_over(consumer: BatchingConsumer, tp: TP, *offsets: int) -> list[int]:
    """The offsets put on the recovery queue."""
    async def run() -> list[int]:
        return [offset for offset in offsets
                if await consumer.hand_over_changelog(record(tp, offset))]
    return asyncio.run(run())


def resume(consumer: BatchingConsumer) -> None:
    async def run() -> None:
        consumer.app.flow_control.resume()
        await asyncio.gather(*consumer._seeks_back)  # the seeks back run in tasks
    asyncio.run(run())


def test_records_dropped_from_the_queue_are_fetched_again_before_any_later_one(
        consumer: BatchingConsumer, seeks: list[dict[TP, int]]) -> None:
    resume(consumer)  # the standbys are resumed
    assert hand_over(consumer, STANDBY, 42, 43, 44) == [42, 43, 44]
    assert hand_over(consumer, OTHER, 7) == [7]
    resume(consumer)  # Faust resumes again after seeking the streams: 42.. are dropped
    queue = consumer.app.tables.changelog_queue
    assert queue.empty()
    assert seeks == [{STANDBY: 42, OTHER: 7}]
    assert not consumer.changelogs_settled({STANDBY})
    # what the fetch loop held, fetched before the seek back, comes after the dropped
    assert hand_over(consumer, STANDBY, 45, 46) == []
    # fetched again from 42: delivered, and what follows
    assert hand_over(consumer, STANDBY, 42, 43, 44, 45, 46, 47) == [42, 43, 44, 45, 46, 47]
    assert consumer.changelogs_settled({STANDBY})
    assert queue.qsize() == 6


def test_an_emptied_queue_that_held_nothing_of_a_partition_leaves_it_alone(
        consumer: BatchingConsumer, seeks: list[dict[TP, int]]) -> None:
    resume(consumer)
    resume(consumer)
    assert seeks == []
    assert hand_over(consumer, STANDBY, 42) == [42]


def test_a_rebalance_that_empties_the_queue_leaves_the_seeks_to_the_recovery(
        consumer: BatchingConsumer, seeks: list[dict[TP, int]]) -> None:
    resume(consumer)
    assert hand_over(consumer, STANDBY, 42) == [42]
    consumer.app.flow_control.suspend()
    consumer.app.flow_control.clear()  # a revoke: the next recovery round seeks
    assert seeks == []
    resume(consumer)
    assert seeks == [], "what was queued before the revoke is the recovery's to seek"
