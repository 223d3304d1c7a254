"""Batch agents on a real broker: dead letters, replay, kill -9 and SIGTERM mid-batch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import WorkerProcess, committed_lag, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=f"k{i % 50}".encode(), value=value)
                   for i, value in enumerate(values)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every committed record of `topic`, from the start to the current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p)
                          for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: (await consumer.committed(TopicPartition(topic, p))) or 0
                for p in range(3)}
    finally:
        await consumer.stop()


def item(i: int, fail: bool = False) -> bytes:
    return json.dumps({"id": i, "fail": fail}).encode()


def sink_ids(bootstrap: str, topic: str) -> Counter[int]:
    return Counter(json.loads(r.value)["id"]
                   for r in asyncio.run(read_all(bootstrap, f"{topic}.out")))


def items_worker(bootstrap: str, topic: str, tmp_path: Path, output_dir: Path,
                 **env: str) -> WorkerProcess:
    return WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": f"app-{topic}",
        "DATA_DIR": str(tmp_path / "data"), "DEPLOYMENT_MODULES": "tests.deployments.items",
        "TEST_TOPIC": topic, "FLUSH_INTERVAL_MS": "200", "RETRY_BACKOFF_MS": "10",
        "TEST_FIXED_FILE": str(tmp_path / "fixed"), "TEST_HOLD_FILE": str(tmp_path / "hold"),
        "TEST_BATCH_MARK": str(tmp_path / "mark"), **env,
    }, log_path=output_dir / "worker.log")


def caught_up(bootstrap: str, topic: str) -> bool:
    return asyncio.run(committed_lag(bootstrap, f"app-{topic}", topic)) == 0


def test_bad_records_go_to_the_dead_letter_topic_and_replay_processes_them(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    total = 20_000
    malformed = {i for i in range(total) if i % 100 == 0}            # 1%
    failing = {i for i in range(total) if i % 200 == 1}              # 0.5%
    values = [b"{not json" if i in malformed else item(i, fail=i in failing)
              for i in range(total)]
    good = set(range(total)) - malformed - failing

    with items_worker(kafka_bootstrap, topic, tmp_path, output_dir) as worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, values))
        wait_for(lambda: caught_up(kafka_bootstrap, topic), 240, "every record committed")

        processed = sink_ids(kafka_bootstrap, topic)
        assert set(processed) == good
        assert max(processed.values()) == 1, "a good record was handled twice"

        letters = asyncio.run(read_all(kafka_bootstrap, f"{topic}.dlq"))
        assert len(letters) == len(malformed) + len(failing)
        by_type = Counter(dict(r.headers)["x-error-type"].decode() for r in letters)
        assert by_type == {"DecodeError": len(malformed), "ValueError": len(failing)}
        for letter in letters:
            headers = {k: v.decode() for k, v in letter.headers}
            assert headers["x-original-topic"] == topic
            assert set(headers) >= {"x-error-message", "x-original-partition",
                                    "x-original-offset", "x-attempts", "x-failed-at"}
            if headers["x-error-type"] == "ValueError":
                item_id = json.loads(letter.value)["id"]
                assert item_id in failing
                assert headers["x-error-message"] == f"item {item_id} refused"
                assert int(headers["x-attempts"]) > 4    # 1 + 3 retries, then the splits
                assert letter.key == f"k{item_id % 50}".encode()
            else:
                assert letter.value == b"{not json"
                assert int(headers["x-attempts"]) == 1
        # the coordinates point at the original records
        original = {(r.partition, r.offset): r.value
                    for r in asyncio.run(read_all(kafka_bootstrap, topic))}
        for letter in letters:
            headers = {k: v.decode() for k, v in letter.headers}
            assert original[(int(headers["x-original-partition"]),
                             int(headers["x-original-offset"]))] == letter.value

        # the agent is still running
        asyncio.run(produce(kafka_bootstrap, topic, [item(total)]))
        wait_for(lambda: total in sink_ids(kafka_bootstrap, topic), 60, "a new record handled")

        # the bug is fixed: replay the handler's failures (not the malformed ones)
        (tmp_path / "fixed").touch()
        replay = subprocess.run(
            [sys.executable, "worker.py", "dlq", "replay", topic,
             "--where", "x-error-type=ValueError"],
            cwd=ROOT, env=worker.env, capture_output=True, text=True, timeout=120)
        assert replay.returncode == 0, replay.stderr
        assert f"replayed {len(failing)} dead letters of {topic}" in replay.stdout
        wait_for(lambda: set(sink_ids(kafka_bootstrap, topic)) >= failing, 120,
                 "replayed records handled")
        again = subprocess.run(
            [sys.executable, "worker.py", "dlq", "replay", topic,
             "--where", "x-error-type=ValueError"],
            cwd=ROOT, env=worker.env, capture_output=True, text=True, timeout=120)
        assert f"replayed 0 dead letters of {topic}" in again.stdout or \
            "replayed" in again.stdout


def test_worker_killed_mid_batch_gets_the_batch_again(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    (tmp_path / "hold").touch()
    worker = items_worker(kafka_bootstrap, topic, tmp_path, output_dir, TEST_BATCH_SIZE="50")
    with worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(500)]))
        wait_for(lambda: (tmp_path / "mark").exists(), 60, "the handler to hold a batch")
        batch = json.loads((tmp_path / "mark").read_text())
        worker.kill()

    first_in_batch: dict[int, int] = {}
    for partition, offset in batch:
        first_in_batch[partition] = min(offset, first_in_batch.get(partition, offset))
    done = asyncio.run(committed(kafka_bootstrap, f"app-{topic}", topic))
    for partition, offset in first_in_batch.items():
        assert done[partition] <= offset, "an offset was committed past an unprocessed record"

    (tmp_path / "hold").unlink()
    with items_worker(kafka_bootstrap, topic, tmp_path, output_dir) as restarted:
        restarted.wait_ready()
        wait_for(lambda: caught_up(kafka_bootstrap, topic), 120, "every record committed")
    assert set(sink_ids(kafka_bootstrap, topic)) == set(range(500))


def test_sigterm_finishes_and_commits_the_batch_in_hand(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    (tmp_path / "hold").touch()
    worker = items_worker(kafka_bootstrap, topic, tmp_path, output_dir, TEST_BATCH_SIZE="500")
    with worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(300)]))
        wait_for(lambda: (tmp_path / "mark").exists(), 60, "the handler to hold a batch")
        batch = json.loads((tmp_path / "mark").read_text())
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        log = worker.log_path
        assert log is not None
        wait_for(lambda: "finishing the batches in hand" in log.read_text(errors="replace"),
                 30, "the worker to start its shutdown")
        (tmp_path / "hold").unlink()
        assert worker.process.wait(60) == 0

    last_in_batch: dict[int, int] = {}
    for partition, offset in batch:
        last_in_batch[partition] = max(offset, last_in_batch.get(partition, offset))
    done = asyncio.run(committed(kafka_bootstrap, f"app-{topic}", topic))
    for partition, offset in last_in_batch.items():
        assert done[partition] > offset, "the finished batch was not committed"
    handled = sink_ids(kafka_bootstrap, topic)
    with items_worker(kafka_bootstrap, topic, tmp_path, output_dir) as restarted:
        restarted.wait_ready()
        wait_for(lambda: caught_up(kafka_bootstrap, topic), 120, "every record committed")
    after = sink_ids(kafka_bootstrap, topic)
    assert set(after) == set(range(300))
    assert all(after[i] == 1 for i in handled), "the restart handled the batch again"


def test_without_dead_letters_the_worker_stops_at_the_failing_record(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(topic, 3, 1)]))
    worker = items_worker(kafka_bootstrap, topic, tmp_path, output_dir,
                          TEST_DEAD_LETTER="0", TEST_BATCH_SIZE="10")
    with worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, [item(i, fail=i == 25) for i in range(60)]))
        assert worker.process is not None
        code = worker.process.wait(120)
    assert code != 0
    log = worker.log_path.read_text(errors="replace")  # type: ignore[union-attr]
    assert "failed 4 times: ValueError: item 25 refused; dead letters are off, so the " \
        "worker stops" in log
    records = asyncio.run(read_all(kafka_bootstrap, topic))
    failing = next(r for r in records if json.loads(r.value)["id"] == 25)
    done = asyncio.run(committed(kafka_bootstrap, f"app-{topic}", topic))
    assert done[failing.partition] <= failing.offset
    assert os.path.exists(tmp_path / "data")
