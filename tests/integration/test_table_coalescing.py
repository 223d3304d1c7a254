"""Batch-level coalescing on a real broker: a key touched N times in a batch is written to
the changelog once, and the table still holds the right values."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import WorkerProcess, assigned_consumer, committed_lag, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def produce_keys(bootstrap: str, topic: str, keys: list[str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, key=key.encode(), value=b"{}")
                               for key in keys])
    finally:
        await producer.stop()


async def records_in(bootstrap: str, topic: str) -> int:
    async with assigned_consumer(bootstrap, topic) as (consumer, partitions):
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)


def test_a_batch_of_100_updates_to_3_keys_writes_3_changelog_records(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    app_id = f"app-{topic}"
    keys = [("a", "b", "c")[i % 3] for i in range(100)]
    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(topic, 3, 1)]))
    asyncio.run(produce_keys(kafka_bootstrap, topic, keys))  # all there before the start

    with WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": app_id,
        "DATA_DIR": str(tmp_path / "data"), "DEPLOYMENT_MODULES": "tests.deployments.coalescing",
        "TEST_TOPIC": topic, "TEST_BATCH_SIZE": "100", "FLUSH_INTERVAL_MS": "20000",
    }, log_path=output_dir / "worker.log") as worker:
        worker.wait_ready()
        wait_for(lambda: asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 0,
                 90, "the batch to be committed")
        values = {key: worker.get_json(f"/api/tables/counts/{key}")["value"]
                  for key in ("a", "b", "c")}

    assert values == {"a": 34, "b": 33, "c": 33}
    changelog = f"{app_id}-counts-changelog"
    assert asyncio.run(records_in(kafka_bootstrap, changelog)) == 3


async def changelog_values(bootstrap: str, topic: str) -> list[int]:
    """The values in the changelog, in offset order per partition."""
    async with assigned_consumer(bootstrap, topic) as (consumer, partitions):
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        values: list[int] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                values += [json.loads(record.value) for record in records]
        return values


def test_within_a_commit_interval_batches_share_one_changelog_write_committed_at_shutdown(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    app_id = f"app-{topic}"
    keys = [("a", "b", "c")[i % 3] for i in range(300)]  # 30 batches of 10, 0.3 s each
    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(topic, 3, 1)]))
    asyncio.run(produce_keys(kafka_bootstrap, topic, keys))
    changelog = f"{app_id}-counts-changelog"

    with WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": app_id,
        "DATA_DIR": str(tmp_path / "data"), "DEPLOYMENT_MODULES": "tests.deployments.coalescing",
        "TEST_TOPIC": topic, "TEST_BATCH_SIZE": "10", "TEST_BATCH_DELAY_S": "0.3",
        "COMMIT_INTERVAL_MS": "60000",
    }, log_path=output_dir / "worker.log") as worker:
        worker.wait_ready()

        def counted() -> int | None:
            status, _ = worker.request("/api/tables/counts/a")
            if status != 200:
                return None
            total = sum(worker.get_json(f"/api/tables/counts/{key}")["value"]
                        for key in ("a", "b", "c"))
            return total if total >= 60 else None

        # lookups see the handled batches while their commit interval is still open: the
        # agent is busy, so it does not commit early
        assert wait_for(counted, 90, "a few batches to be handled") < 300
        assert asyncio.run(records_in(kafka_bootstrap, changelog)) == 0
        assert asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 300
        assert worker.stop() == 0  # a graceful stop commits the open interval

    values = asyncio.run(changelog_values(kafka_bootstrap, changelog))
    assert len(values) == 3  # one record per key for all the batches of the window
    # what was committed is exactly what the changelog holds
    assert asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 300 - sum(values)


def test_an_agent_that_caught_up_commits_without_waiting_for_the_interval(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    app_id = f"app-{topic}"
    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(topic, 3, 1)]))
    asyncio.run(produce_keys(kafka_bootstrap, topic, [("a", "b", "c")[i % 3]
                                                      for i in range(300)]))

    with WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": app_id,
        "DATA_DIR": str(tmp_path / "data"), "DEPLOYMENT_MODULES": "tests.deployments.coalescing",
        "TEST_TOPIC": topic, "TEST_BATCH_SIZE": "100", "COMMIT_INTERVAL_MS": "60000",
    }, log_path=output_dir / "worker.log") as worker:
        worker.wait_ready()
        # well before the 60 s interval: the agent ran out of records
        wait_for(lambda: asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 0,
                 30, "the batches to be committed")
        values = {key: worker.get_json(f"/api/tables/counts/{key}")["value"]
                  for key in ("a", "b", "c")}

    assert values == {"a": 100, "b": 100, "c": 100}
    assert len(asyncio.run(changelog_values(kafka_bootstrap, f"{app_id}-counts-changelog"))
               ) <= 9  # at most one per key and batch
