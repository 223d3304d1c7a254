"""The consumer's gate on source records around rebalances, and its commit rule."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import cast

import pytest
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

from streams import Settings, create_app
from streams.processing.consumer import BatchingConsumer

SOURCE = TP("items", 0)


@pytest.fixture
def committed() -> dict[TP, int | None]:
    """What the broker answers for the group's committed offsets (None: none)."""
    return {SOURCE: 15}


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch,
             committed: dict[TP, int | None]) -> Iterator[BatchingConsumer]:
    async def seek_to_committed(self: AIOKafkaConsumer) -> Mapping[TP, int | None]:
        return dict(committed)

    monkeypatch.setattr(AIOKafkaConsumer, "seek_to_committed", seek_to_committed)
    app = create_app(Settings.from_env({"TABLE_STORE": "memory"}), agents=[], tables=[])
    app.consumer_generation_id = 3
    consumer = app.consumer
    assert isinstance(consumer, BatchingConsumer)
    yield consumer


def seek_to_committed(consumer: BatchingConsumer) -> None:
    asyncio.run(consumer.seek_to_committed())


def test_source_records_wait_for_the_resume_that_follows_the_rebalance_seek(
        consumer: BatchingConsumer) -> None:
    flow = consumer.app.flow_control
    flow.resume()  # table recovery resumes the flow to read changelogs
    assert not consumer.streams_resumed()
    seek_to_committed(consumer)
    assert not consumer.streams_resumed(), "the resume that clears the queues is to come"
    flow.resume()
    assert consumer.streams_resumed()
    flow.suspend()  # the next rebalance begins
    assert not consumer.streams_resumed()
    flow.resume()
    consumer.app.consumer_generation_id = 4
    assert not consumer.streams_resumed(), "a new generation waits for its own seek"


def test_nothing_is_committed_before_the_generations_seek(consumer: BatchingConsumer) -> None:
    # a batch finished after its partition was revoked acknowledges 20..29
    consumer._acked[SOURCE].extend(range(20, 30))
    assert consumer._new_offset(SOURCE) is None
    seek_to_committed(consumer)   # committed offset 15: 15..19 are not done
    assert consumer._new_offset(SOURCE) is None
    consumer._acked[SOURCE].extend(range(15, 20))
    assert consumer._new_offset(SOURCE) == 30


def test_with_nothing_committed_the_head_is_the_first_offset(
        consumer: BatchingConsumer, committed: dict[TP, int | None]) -> None:
    committed[SOURCE] = None
    seek_to_committed(consumer)
    consumer._acked[SOURCE].extend([1, 2])
    assert consumer._new_offset(SOURCE) is None, "record 0 was never acknowledged"
    consumer.note_no_records(SOURCE, 0, 1)  # offset 0 holds no record (checked with the broker)
    assert consumer._new_offset(SOURCE) == 3


def test_a_seek_while_the_flow_is_stopped_keeps_a_newer_commit(
        consumer: BatchingConsumer) -> None:
    seek_to_committed(consumer)  # the generation's seek: the broker says 15
    consumer._acked[SOURCE].extend(range(15, 20))
    assert consumer._new_offset(SOURCE) == 20
    consumer._committed_offset[SOURCE] = 20  # as Faust records the commit
    # a revoke stops the flow; a fetch in flight lands, and the broker's answer to the
    # seek that follows predates the commit
    asyncio.run(consumer.seek_while_flow_stopped())
    assert consumer._committed_offset[SOURCE] == 20
    assert consumer._read_offset[SOURCE] == 15  # fetched again from there after the resume
    consumer._acked[SOURCE].extend(range(20, 30))  # the batches in hand finish
    assert consumer._new_offset(SOURCE) == 30, "committed by the revoke, not repeated"


@pytest.fixture
def broker_commits(monkeypatch: pytest.MonkeyPatch,
                   consumer: BatchingConsumer) -> list[bool]:
    """What the broker answers to each commit, in turn (True: made; False: Faust's
    "already rebalanced", the one failure it survives)."""
    answers: list[bool] = []

    async def commit(self: AIOKafkaConsumer, offsets: Mapping[TP, int]) -> bool:
        return answers.pop(0)

    async def flush() -> None:
        return None

    monkeypatch.setattr(AIOKafkaConsumer, "_commit", commit)
    monkeypatch.setattr(AIOKafkaConsumer, "assignment", lambda self: {SOURCE})
    monkeypatch.setattr(consumer.app.producer, "flush", flush)
    return answers


@pytest.mark.parametrize("committed", [{SOURCE: None}])
def test_a_failed_commit_is_not_taken_as_the_base_of_the_next(
        consumer: BatchingConsumer, broker_commits: list[bool]) -> None:
    seek_to_committed(consumer)  # nothing committed: from offset 0
    consumer._acked[SOURCE].extend(range(0, 10))
    assert consumer._new_offset(SOURCE) == 10
    broker_commits.append(False)
    assert not asyncio.run(consumer._commit_offsets({SOURCE: 10}))
    assert consumer.committed_offsets()[SOURCE] is None, "the commit of 10 failed"
    # the partition comes back, still with nothing committed; a later batch (5..9)
    # finishes before the one holding 0..4
    seek_to_committed(consumer)
    consumer._acked[SOURCE].extend(range(5, 10))
    assert consumer._new_offset(SOURCE) is None, "0..4 were never acknowledged"
    consumer._acked[SOURCE].extend(range(0, 5))
    assert consumer._new_offset(SOURCE) == 10
    broker_commits.append(True)
    assert asyncio.run(consumer._commit_offsets({SOURCE: 10}))
    assert consumer.committed_offsets()[SOURCE] == 10


def test_the_worker_consumer_long_polls_for_fetch_max_wait_ms() -> None:
    """Faust fixes the fetch long-poll at 1.5 s; a fetch of quiet partitions then held back
    the next fetch of busy ones that long. The worker's aiokafka consumer takes the
    setting instead (aiokafka reads it when the consumer starts its fetcher)."""
    app = create_app(Settings.from_env({"TABLE_STORE": "memory", "FETCH_MAX_WAIT_MS": "250"}),
                     agents=[], tables=[])
    consumer = app.consumer
    assert isinstance(consumer, BatchingConsumer)

    async def create_client() -> int:
        thread = consumer._new_consumer_thread()
        client = thread._create_worker_consumer(consumer.transport)
        return int(client._fetch_max_wait_ms)

    assert asyncio.run(create_client()) == 250
    default = create_app(Settings.from_env({"TABLE_STORE": "memory"}), agents=[], tables=[])
    assert cast(BatchingConsumer, default.consumer).fetch_max_wait_ms == 100


def test_records_fetched_between_the_seek_and_the_resume_are_fetched_again(
        consumer: BatchingConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust awaits its seek to the committed offsets before it resumes the flow: records
    fetched from the seeked position in between are dropped, and must come again even if
    no later record of the partition ever arrives to show the jump."""
    seeks: list[tuple[TP, int]] = []

    async def seek(self: AIOKafkaConsumer, partition: TP, offset: int) -> None:
        seeks.append((partition, offset))

    monkeypatch.setattr(AIOKafkaConsumer, "seek", seek)
    flow = consumer.app.flow_control
    flow.resume()  # table recovery resumes the flow to read changelogs
    seek_to_committed(consumer)  # the next record of SOURCE is 15
    fetched = [SimpleNamespace(offset=offset, generation_id=3) for offset in range(15, 20)]
    assert asyncio.run(consumer.admit_sources(SOURCE, fetched)) == []  # type: ignore[arg-type]
    asyncio.run(consumer.before_fetch())
    assert seeks == [], "no seek back before the resume (the flow may be stopped again)"
    flow.resume()
    asyncio.run(consumer.before_fetch())
    assert seeks == [(SOURCE, 15)]
    asyncio.run(consumer.before_fetch())
    assert seeks == [(SOURCE, 15)], "once"
    assert asyncio.run(consumer.admit_sources(SOURCE, fetched)) == fetched  # type: ignore[arg-type]


def test_dropped_records_of_a_partition_never_committed_are_fetched_from_the_start(
        consumer: BatchingConsumer, committed: dict[TP, int | None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    seeks: list[tuple[TP, int]] = []

    async def seek(self: AIOKafkaConsumer, partition: TP, offset: int) -> None:
        seeks.append((partition, offset))

    monkeypatch.setattr(AIOKafkaConsumer, "seek", seek)
    committed[SOURCE] = None  # a new group: read from the earliest offset
    seek_to_committed(consumer)
    fetched = [SimpleNamespace(offset=offset, generation_id=3) for offset in range(0, 4)]
    assert asyncio.run(consumer.admit_sources(SOURCE, fetched)) == []  # type: ignore[arg-type]
    consumer.app.flow_control.resume()
    asyncio.run(consumer.before_fetch())
    assert seeks == [(SOURCE, 0)]
