"""Records built to break decoding, among good ones, on a real broker: each poison record
ends in `<topic>.dlq` with its reason, every good record is handled exactly once, and the
worker goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.testing import wait_for
from tests.integration.test_batch_agents import (
    caught_up,
    item,
    items_worker,
    read_all,
    sink_ids,
)

pytestmark = pytest.mark.integration

#: A record timestamp (ms) far past datetime's year 9999.
FAR_FUTURE_MS = 2**62
POISON = {
    "deep": (b"k-deep", b"[" * 100_000, None, "nested deeper than 64 levels"),
    "utf8-value": (b"k-utf8", b'\xff\xfe{"id": 1}', None, "value is not UTF-8"),
    "utf8-key": (b"\xc3\x28", item(10_001), None, "key is not UTF-8"),
    "timestamp": (b"k-time", item(10_002), FAR_FUTURE_MS, "is not a valid time"),
}


async def create_topic(bootstrap: str, topic: str) -> None:
    """The test's topic, accepting any record timestamp (Kafka 4 refuses those more than
    an hour ahead by default)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1, topic_configs={
            "message.timestamp.after.max.ms": str(2**63 - 1)})])
    finally:
        await admin.close()


async def publish(bootstrap: str, topic: str,
                  records: list[tuple[bytes, bytes, int | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value, timestamp_ms=timestamp)
                   for key, value, timestamp in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def test_poison_records_are_dead_lettered_and_good_ones_processed_once(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    asyncio.run(create_topic(kafka_bootstrap, topic))
    good = list(range(300))
    records: list[tuple[bytes, bytes, int | None]] = []
    poison = iter(POISON.values())
    for i in good:
        records.append((f"k{i % 50}".encode(), item(i), None))
        if i % 75 == 30:  # poison between good records, in the same batches
            key, value, timestamp, _ = next(poison)
            records.append((key, value, timestamp))

    with items_worker(kafka_bootstrap, topic, tmp_path, output_dir) as worker:
        worker.wait_ready()
        asyncio.run(publish(kafka_bootstrap, topic, records))
        wait_for(lambda: caught_up(kafka_bootstrap, topic), 180, "every record committed")

        processed = sink_ids(kafka_bootstrap, topic)
        assert set(processed) == set(good)
        assert max(processed.values()) == 1, "a good record was handled twice"

        letters = asyncio.run(read_all(kafka_bootstrap, f"{topic}.dlq"))
        assert len(letters) == len(POISON)
        by_key = {letter.key: {k: v.decode() for k, v in letter.headers} for letter in letters}
        for key, _value, _timestamp, reason in POISON.values():
            headers = by_key[key]
            assert headers["x-error-type"] == "DecodeError"
            assert reason in headers["x-error-message"], headers["x-error-message"]
            assert headers["x-original-topic"] == topic
        assert {letter.key: letter.value for letter in letters} == {
            key: value for key, value, _, _ in POISON.values()}

        # still consuming
        asyncio.run(publish(kafka_bootstrap, topic, [(b"k-after", item(20_000), None)]))
        wait_for(lambda: 20_000 in sink_ids(kafka_bootstrap, topic), 60, "a later record")
        assert worker.request("/health")[0] == 200
