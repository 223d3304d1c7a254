"""Helpers of the table recovery and standby tests (deployment `tests.deployments.counts`).

- `produce_updates` writes `{"amount": n}` updates in bulk, one record batch after the
  other per partition, on the partition Kafka's default partitioner gives each key;
- `metric` reads one metric of a worker's `/metrics`, summed over matching labels;
- `changelog_ends` reads the end offsets of the `counts` table's changelog.
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams.partitioner import key_partition
from streams.testing import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
TABLE = "counts"


def counts_env(bootstrap: str, app_id: str, topic: str, data_dir: Path,
               **extra: str) -> dict[str, str]:
    """Settings of a worker running the counts deployment."""
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": app_id, "TEST_TOPIC": topic,
            "DATA_DIR": str(data_dir), "DEPLOYMENT_MODULES": "tests.deployments.counts",
            "FLUSH_INTERVAL_MS": "200", **extra}


async def produce_updates(bootstrap: str, topic: str, partitions: int, updates: int,
                          keys: int, prefix: str) -> dict[str, dict[str, int]]:
    """Publish `updates` updates spread evenly over `keys` keys `<prefix>-<n>`.

    Returns the {"count", "sum"} each key must reach.
    """
    rng = random.Random(11)
    names = [f"{prefix}-{n}" for n in range(keys)]
    expected = {name: {"count": 0, "sum": 0} for name in names}
    by_partition: defaultdict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for i in range(updates):
        name, amount = names[i % keys], rng.randint(1, 1000)
        expected[name]["count"] += 1
        expected[name]["sum"] += amount
        raw_key = name.encode()
        by_partition[key_partition(raw_key, partitions)].append(
            (raw_key, json.dumps({"amount": amount}).encode()))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, max_batch_size=512 * 1024)
    await producer.start()
    try:
        sent = []
        for partition, records in by_partition.items():
            batch = producer.create_batch()
            for raw_key, value in records:
                if batch.append(key=raw_key, value=value, timestamp=None) is None:
                    sent.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=raw_key, value=value, timestamp=None)
            sent.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return expected


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    """Sum of the worker's samples of `name` whose labels include `labels`."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = set(labels.items())
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and wanted <= set(sample.labels.items()))


def changelog_ends(bootstrap: str, app_id: str, partitions: int) -> dict[int, int]:
    """End offset of each partition of the counts table's changelog topic."""

    async def read() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(f"{app_id}-{TABLE}-changelog", p) for p in range(partitions)]
            ends = await consumer.end_offsets(tps)
            return {tp.partition: offset for tp, offset in ends.items()}
        finally:
            await consumer.stop()

    return asyncio.run(read())


def value_of(worker: WorkerProcess, key: str) -> Any:
    """The key's value as the worker's table API answers it, or None if it does not."""
    status, body = worker.request(f"/api/tables/{TABLE}/{key}")
    return body["value"] if status == 200 else None
