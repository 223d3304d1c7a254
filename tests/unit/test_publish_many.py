"""publish_many: record batches per partition, and what happens when a batch fails."""

from __future__ import annotations

from aiokafka.errors import (
    KafkaTimeoutError,
    NotEnoughReplicasError,
    TopicAuthorizationFailedError,
)

from streams.errors import PublishError
from streams.kafka.publisher import Delivery, Outgoing
from tests.unit.publisher_fakes import HOLD, OK, FakeProducer, SendRefused, started


def offsets(results: list[Delivery | PublishError]) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in results if isinstance(r, Delivery)]


async def test_a_partitions_records_go_as_batches_in_order_each_with_its_offset() -> None:
    fake = FakeProducer()
    publisher = await started(fake)
    results = await publisher.publish_many(
        "t", [Outgoing(n, partition=n % 2) for n in range(2500)])
    assert fake.batches == [1000, 250, 1000, 250], "1,250 records each for partitions 0 and 1"
    assert offsets(results) == [(n % 2, n // 2) for n in range(2500)]
    assert [s["value"] for s in fake.sent if s["partition"] == 0] == [
        str(n).encode() for n in range(0, 2500, 2)]


async def test_a_failed_batch_is_sent_again_record_by_record() -> None:
    fake = FakeProducer([NotEnoughReplicasError()])
    publisher = await started(fake)
    results = await publisher.publish_many("t", [Outgoing(n, partition=0) for n in range(3)])
    assert fake.batches == [3]
    assert len(fake.sent) == 6, "the batch, then each record on its own"
    assert offsets(results) == [(0, 0), (0, 1), (0, 2)]


async def test_a_batch_the_producer_refuses_fails_its_records_or_retries_them() -> None:
    refused = FakeProducer([SendRefused(TopicAuthorizationFailedError())])
    results = await (await started(refused)).publish_many(
        "t", [Outgoing(n, partition=0) for n in range(2)])
    assert all(isinstance(r, PublishError) and not r.retriable for r in results)
    assert refused.sent == [{"topic": "t", "value": b"0", "key": None, "partition": 0,
                             "headers": []},
                            {"topic": "t", "value": b"1", "key": None, "partition": 0,
                             "headers": []}]

    no_room = FakeProducer([SendRefused(KafkaTimeoutError())])
    results = await (await started(no_room)).publish_many(
        "t", [Outgoing(n, partition=0) for n in range(2)])
    assert offsets(results) == [(0, 0), (0, 1)], "queued again once there was room"


async def test_a_record_of_half_a_batch_or_more_goes_alone_through_send() -> None:
    fake = FakeProducer()
    publisher = await started(fake, max_batch_bytes=200)
    results = await publisher.publish_many(
        "t", [Outgoing("a", partition=0), Outgoing("x" * 100, partition=0),
              Outgoing("b", partition=0)])
    assert fake.batches == [1, 1], "the large record was not put in a batch"
    assert [s["value"] for s in fake.sent] == [b"a", b"x" * 100, b"b"]
    assert offsets(results) == [(0, 0), (0, 1), (0, 2)]


async def test_a_batch_still_in_flight_at_the_deadline_is_not_sent_again() -> None:
    fake = FakeProducer([HOLD, OK])
    publisher = await started(fake, deadline_s=0.3, attempt_timeout_s=0.1)
    results = await publisher.publish_many("t", [Outgoing(n, partition=0) for n in range(2)])
    assert all(isinstance(r, PublishError) and r.retriable for r in results)
    assert "no acknowledgement" in str(results[0])
    assert len(fake.sent) == 2, "not confirmed, but never written twice"
