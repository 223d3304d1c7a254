"""Publisher against a real broker: partitioning, acks=all + idempotence, retries, faults."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from streams.errors import KafkaLauncherError, PublishError
from streams.kafka.partitioner import key_partition
from streams.kafka.publisher import Delivery, Outgoing, Publisher, PublisherConfig
from streams.settings import Settings
from tests.support.kafka_local import LocalKafka

pytestmark = pytest.mark.integration


async def create_topic(bootstrap: str, name: str, partitions: int = 3, rf: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, rf)])
    finally:
        await admin.close()


Stored = list[tuple[int, int, bytes | None, bytes]]


async def read_all(bootstrap: str, topic: str, timeout: float = 60) -> Stored:
    """Every record of `topic` up to its current end: (partition, offset, key, value)."""
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:  # brokers that were just restarted may still refuse a moment
            try:
                [described] = await admin.describe_topics([topic])
                break
            except KafkaError:
                assert time.monotonic() < deadline, "could not describe the topic in time"
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(partitions)
        records = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            assert time.monotonic() < deadline, "could not read the topic to its end in time"
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                records += [(tp.partition, m.offset, m.key, m.value) for m in messages]
        return records
    finally:
        await consumer.stop()


def publisher_for(bootstrap: str, **config: object) -> Publisher:
    values: dict[str, object] = {"max_attempts": 5, "deadline_s": 60, "attempt_timeout_s": 10,
                                 "backoff_ms": 50, "backoff_max_ms": 1000}
    values.update(config)
    return Publisher(Settings(bootstrap_servers=bootstrap), PublisherConfig(**values))


@pytest.fixture
async def publisher(kafka_bootstrap: str) -> AsyncIterator[Publisher]:
    async with publisher_for(kafka_bootstrap) as started:
        yield started


async def test_same_key_same_partition_and_equal_to_murmur2(
    publisher: Publisher, kafka_bootstrap: str, unique_name: str
) -> None:
    await create_topic(kafka_bootstrap, unique_name, partitions=3)
    keys = [f"customer-{n}" for n in range(1000)]
    records = [Outgoing({"n": i}, key=keys[i % 1000]) for i in range(10_000)]
    results = await publisher.publish_many(unique_name, records)
    assert all(isinstance(r, Delivery) for r in results)

    stored = await read_all(kafka_bootstrap, unique_name)
    assert len(stored) == 10_000
    partitions_of: dict[bytes, set[int]] = {}
    for partition, _, key, _ in stored:
        partitions_of.setdefault(key or b"", set()).add(partition)
    assert len(partitions_of) == 1000
    assert all(len(found) == 1 for found in partitions_of.values())
    for key, found in partitions_of.items():
        assert found == {key_partition(key, 3)}
    # Known keys, partition computed by the Java client (toPositive(murmur2(key)) % 3).
    for key, expected in {"user-42": 1, "foobar": 0, "a-little-bit-long-string": 2}.items():
        delivery = await publisher.publish(unique_name, "x", key=key)
        assert delivery.partition == expected


async def test_keyless_records_spread_evenly(
    publisher: Publisher, kafka_bootstrap: str, unique_name: str
) -> None:
    await create_topic(kafka_bootstrap, unique_name, partitions=3)
    results = await publisher.publish_many(
        unique_name, [Outgoing({"n": i}) for i in range(3000)])
    assert all(isinstance(r, Delivery) for r in results)
    counts = Counter(partition for partition, *_ in await read_all(kafka_bootstrap, unique_name))
    assert sum(counts.values()) == 3000 and len(counts) == 3
    assert max(counts.values()) - min(counts.values()) <= 1


async def test_acks_all_and_idempotence_are_on(publisher: Publisher, kafka_bootstrap: str,
                                               unique_name: str) -> None:
    await create_topic(kafka_bootstrap, unique_name, partitions=1)
    delivery = await publisher.publish(unique_name, {"hello": "world"}, key="k",
                                       headers={"trace": "t-1"})
    producer = publisher.producer
    assert producer._sender._acks == -1  # acks=all as sent in every produce request
    manager = producer._txn_manager
    assert manager is not None and manager.has_pid(), "no producer id: idempotence is off"
    stored = await read_all(kafka_bootstrap, unique_name)
    assert stored == [(0, delivery.offset, b"k", b'{"hello":"world"}')]


async def test_unknown_topic_fails_at_once(publisher: Publisher, unique_name: str) -> None:
    begun = time.monotonic()
    with pytest.raises(PublishError, match="does not exist") as caught:
        await publisher.publish(unique_name, {"a": 1})
    assert caught.value.attempts == 1 and time.monotonic() - begun < 5


async def test_auto_create_creates_the_topic(kafka_bootstrap: str, unique_name: str) -> None:
    async with publisher_for(kafka_bootstrap, auto_create_topics=True) as publisher:
        delivery = await publisher.publish(unique_name, {"a": 1})
    assert [(p, o) for p, o, *_ in await read_all(kafka_bootstrap, unique_name)] == [
        (delivery.partition, delivery.offset)]


async def test_too_large_record_fails_at_once(kafka_bootstrap: str, unique_name: str) -> None:
    await create_topic(kafka_bootstrap, unique_name, partitions=1)
    async with publisher_for(kafka_bootstrap, max_request_bytes=10_000) as publisher:
        with pytest.raises(PublishError, match="MessageSizeTooLarge") as caught:
            await publisher.publish(unique_name, b"x" * 20_000)
        assert caught.value.attempts == 1 and not caught.value.retriable


async def test_fire_and_forget_delivers_everything_by_close(
    kafka_bootstrap: str, unique_name: str
) -> None:
    await create_topic(kafka_bootstrap, unique_name, partitions=3)
    async with publisher_for(kafka_bootstrap, queue_size=100) as publisher:
        for n in range(2000):
            await publisher.publish_soon(unique_name, {"n": n}, key=str(n))
        assert await publisher.close() == []
    values = sorted(v for *_, v in await read_all(kafka_bootstrap, unique_name))
    assert values == sorted(f'{{"n":{n}}}'.encode() for n in range(2000))


async def test_stopping_a_broker_mid_stream_loses_and_duplicates_nothing(
    kafka_cluster: LocalKafka, unique_name: str
) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    await create_topic(bootstrap, unique_name, partitions=3, rf=3)
    acknowledged: list[bytes] = []
    async with publisher_for(bootstrap, deadline_s=120, max_attempts=100) as publisher:
        stopping = None
        for chunk in range(30):
            records = [Outgoing(f"{chunk}-{n}", key=f"k{n % 50}") for n in range(1000)]
            results = await publisher.publish_many(unique_name, records)
            acknowledged += [r.value for r, d in zip(records, results, strict=True)
                             if isinstance(d, Delivery)]
            if chunk == 5:
                stopping = asyncio.create_task(asyncio.to_thread(kafka_cluster.stop_broker, 2))
        assert stopping is not None
        await stopping
    stored = Counter(value for *_, value in await read_all(bootstrap, unique_name))
    assert len(acknowledged) == 30_000, "records were refused with two of three brokers up"
    assert all(stored[value.encode()] == 1 for value in acknowledged)
    assert all(count == 1 for count in stored.values()), "a record was written twice"


def restart(cluster: LocalKafka, nodes: tuple[int, ...]) -> None:
    """Start killed brokers again; returns once the cluster has all of them."""
    for node in nodes[:-1]:
        # start_broker launches the node, then refuses to wait while another node is down.
        with contextlib.suppress(KafkaLauncherError):
            cluster.start_broker(node)
    cluster.start_broker(nodes[-1])


async def test_retries_give_up_while_brokers_are_down_and_succeed_once_back(
    kafka_cluster: LocalKafka, unique_name: str
) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    await create_topic(bootstrap, unique_name, partitions=1, rf=3)
    quick = publisher_for(bootstrap, max_attempts=3, attempt_timeout_s=1, backoff_ms=100)
    patient = publisher_for(bootstrap, max_attempts=1000, attempt_timeout_s=2, deadline_s=120)
    await quick.start()
    await patient.start()
    try:
        await quick.publish(unique_name, "before")
        await patient.publish(unique_name, "before-2")
        # Two of three down: no majority for the controllers, no in-sync quorum for writes.
        for node in (2, 3):
            kafka_cluster.kill_broker(node)

        begun = time.monotonic()
        with pytest.raises(PublishError) as caught:
            await quick.publish(unique_name, "while-down")
        assert caught.value.attempts == 3 and caught.value.retriable
        assert caught.value.topic == unique_name
        assert time.monotonic() - begun < 15

        pending = asyncio.create_task(patient.publish(unique_name, "comes-through"))
        await asyncio.to_thread(restart, kafka_cluster, (2, 3))
        delivery = await asyncio.wait_for(pending, 120)
    finally:
        await quick.close(timeout=30)
        await patient.close(timeout=30)
    stored = {value: offset for _, offset, _, value in await read_all(bootstrap, unique_name)}
    assert stored[b"comes-through"] == delivery.offset
