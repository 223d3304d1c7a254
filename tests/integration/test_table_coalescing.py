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


def counting_worker(bootstrap: str, topic: str, records: int, tmp_path: Path,
                    output_dir: Path, **env: str) -> WorkerProcess:
    """A worker of tests.deployments.coalescing (app `app-<topic>`) over a new `topic`
    already holding `records` records keyed a, b, c, a, ..."""
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(topic, 3, 1)]))
    asyncio.run(produce_keys(bootstrap, topic, [("a", "b", "c")[i % 3]
                                                for i in range(records)]))
    return WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": f"app-{topic}",
        "DATA_DIR": str(tmp_path / "data"), "DEPLOYMENT_MODULES": "tests.deployments.coalescing",
        "TEST_TOPIC": topic, **env}, log_path=output_dir / "worker.log")


def counts_once_committed(worker: WorkerProcess, bootstrap: str, app_id: str, topic: str,
                          deadline: float) -> dict[str, int]:
    """The counts of a, b and c over HTTP, once the group committed all of `topic`."""
    worker.wait_ready()
    wait_for(lambda: asyncio.run(committed_lag(bootstrap, app_id, topic)) == 0,
             deadline, "the batches to be committed")
    return {key: worker.get_json(f"/api/tables/counts/{key}")["value"]
            for key in ("a", "b", "c")}


def test_a_batch_of_100_updates_to_3_keys_writes_3_changelog_records(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic, app_id = unique_name, f"app-{unique_name}"
    with counting_worker(kafka_bootstrap, topic, 100, tmp_path, output_dir,  # one batch
                         TEST_BATCH_SIZE="100", FLUSH_INTERVAL_MS="20000") as worker:
        values = counts_once_committed(worker, kafka_bootstrap, app_id, topic, 90)

    assert values == {"a": 34, "b": 33, "c": 33}
    changelog = f"{app_id}-counts-changelog"
    assert asyncio.run(records_in(kafka_bootstrap, changelog)) == 3


async def changelog_values(bootstrap: str, topic: str) -> dict[bytes, list[int]]:
    """Per key, the values in the changelog, in offset order."""
    async with assigned_consumer(bootstrap, topic) as (consumer, partitions):
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        values: dict[bytes, list[int]] = {}
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    values.setdefault(record.key, []).append(json.loads(record.value))
        return values


def test_within_a_commit_interval_batches_share_one_changelog_write_committed_at_shutdown(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic, app_id = unique_name, f"app-{unique_name}"
    changelog = f"{app_id}-counts-changelog"
    with counting_worker(kafka_bootstrap, topic, 300, tmp_path, output_dir,  # 30 batches
                         TEST_BATCH_SIZE="10", TEST_BATCH_DELAY_S="0.3",  # of 0.3 s
                         COMMIT_INTERVAL_MS="60000") as worker:
        worker.wait_ready()

        def count(key: str) -> int:
            status, body = worker.request(f"/api/tables/counts/{key}")
            return int(body["value"]) if status == 200 else 0  # 404: not counted yet

        def counted() -> int | None:
            total = sum(count(key) for key in ("a", "b", "c"))
            return total if total >= 60 else None

        # lookups see the handled batches while their commit interval is still open: the
        # agent is busy, so it does not commit early
        assert wait_for(counted, 90, "a few batches to be handled") < 300
        assert asyncio.run(records_in(kafka_bootstrap, changelog)) == 0
        assert asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 300
        assert worker.stop() == 0  # a graceful stop commits the open interval

    values = asyncio.run(changelog_values(kafka_bootstrap, changelog))
    # one record per key for all the batches of the window (of several batches per key)
    assert values and all(len(per_key) == 1 for per_key in values.values()), values
    # what was committed is exactly what the changelog holds
    assert asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 300 - sum(
        per_key[0] for per_key in values.values())


def test_an_agent_that_caught_up_commits_without_waiting_for_the_interval(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic, app_id = unique_name, f"app-{unique_name}"
    with counting_worker(kafka_bootstrap, topic, 300, tmp_path, output_dir,
                         TEST_BATCH_SIZE="100", COMMIT_INTERVAL_MS="60000") as worker:
        # well before the 60 s interval: the agent ran out of records
        values = counts_once_committed(worker, kafka_bootstrap, app_id, topic, 30)

    assert values == {"a": 100, "b": 100, "c": 100}
    changelog = asyncio.run(changelog_values(kafka_bootstrap, f"{app_id}-counts-changelog"))
    assert sum(len(per_key) for per_key in changelog.values()) <= 9  # one per key and batch
