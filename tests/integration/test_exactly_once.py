"""PROCESSING_GUARANTEE=exactly_once on a real broker: transactional clients, aborted work
invisible to read_committed readers, kill -9 and restarts without loss or duplicates.

The deployment (tests/deployments/eos.py) counts items per key in a table, sends each id to
`<topic>.early` itself while the batch runs and returns it for the sink `<topic>.out`.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import (
    WorkerProcess,
    assigned_consumer,
    committed_lag,
    table_matches,
    wait_for,
)
from tests.integration.test_batch_agents import item, produce

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEYS = 50  # produce() keys item i with k{i % 50}


async def read_ids(bootstrap: str, topic: str, isolation: str) -> Counter[int]:
    """How often each id is in `topic`, read from the start to its end as `isolation`.

    read_committed ends at the last stable offset: what is visible now, without waiting
    for open transactions.
    """
    async with assigned_consumer(bootstrap, topic, isolation_level=isolation) as (
            consumer, partitions):
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        ids: Counter[int] = Counter()
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                ids.update(json.loads(r.value)["id"] for r in records
                           if r.offset < ends[TopicPartition(r.topic, r.partition)])
        return ids


def committed_ids(bootstrap: str, topic: str) -> Counter[int]:
    return asyncio.run(read_ids(bootstrap, topic, "read_committed"))


def all_written_ids(bootstrap: str, topic: str) -> Counter[int]:
    return asyncio.run(read_ids(bootstrap, topic, "read_uncommitted"))


def eos_worker(bootstrap: str, topic: str, tmp_path: Path, log: Path,
               **env: str) -> WorkerProcess:
    if log.exists() and topic not in log.read_text(errors="replace"):
        log.unlink()  # a previous run's
    return WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": f"app-{topic}",
        "PROCESSING_GUARANTEE": "exactly_once", "DATA_DIR": str(tmp_path / "data"),
        "DEPLOYMENT_MODULES": "tests.deployments.eos", "TEST_TOPIC": topic,
        "FLUSH_INTERVAL_MS": "200", "RETRY_BACKOFF_MS": "10",
        "TEST_STEER_DIR": str(tmp_path), **env,
    }, log_path=log)


def create_topics(bootstrap: str, topic: str) -> None:
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(name, 3, 1) for name in
                                          (topic, f"{topic}.out", f"{topic}.early")]))


def lag(bootstrap: str, topic: str) -> int:
    return asyncio.run(committed_lag(bootstrap, f"app-{topic}", topic))


def expected_counts(total: int) -> dict[str, int]:
    return dict(Counter(f"k{i % KEYS}" for i in range(total)))


def assert_exactly_once(bootstrap: str, topic: str, total: int) -> None:
    for name in (f"{topic}.out", f"{topic}.early"):
        ids = committed_ids(bootstrap, name)
        assert set(ids) == set(range(total)), f"{name}: lost {set(range(total)) - set(ids)}"
        duplicates = {i: n for i, n in ids.items() if n > 1}
        assert not duplicates, f"{name}: duplicated ids {sorted(duplicates)[:20]}"


def wait_for_exact_counts(worker: WorkerProcess, total: int) -> None:
    """Wait until the table holds the exact count of every key; else fail with the diff."""
    expected = expected_counts(total)
    try:
        wait_for(lambda: table_matches(worker, "eos_counts", expected), 60,
                 "exact table counts")
    except TimeoutError:
        actual = {key: worker.request(f"/api/tables/eos_counts/{key}")[1].get("value")
                  for key in expected}
        wrong = {key: (actual[key], n) for key, n in expected.items() if actual[key] != n}
        raise AssertionError(f"table counts (actual, expected) differ: {wrong}") from None


def restart_and_check(bootstrap: str, topic: str, tmp_path: Path, log: Path,
                      total: int) -> None:
    """A new worker finishes the topic: every id once in the sinks, exact counts."""
    with eos_worker(bootstrap, topic, tmp_path, log) as restarted:
        restarted.wait_ready(120)
        wait_for(lambda: lag(bootstrap, topic) == 0, 180, "every record committed")
        assert_exactly_once(bootstrap, topic, total)
        wait_for_exact_counts(restarted, total)


def metric_samples(worker: WorkerProcess) -> str:
    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as response:
        return response.read().decode()


def test_worker_clients_are_transactional_and_read_committed(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    create_topics(kafka_bootstrap, topic)
    with eos_worker(kafka_bootstrap, topic, tmp_path, output_dir / "worker.log") as worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(300)]))
        wait_for(lambda: lag(kafka_bootstrap, topic) == 0, 120, "every record committed")
        text = metric_samples(worker)
    assert re.search(r'streams_processing_guarantee_info\{guarantee="exactly_once",'
                     r'isolation_level="read_committed"\} 1\.0', text), text
    # a transactional producer per assigned source partition, named for fencing
    # (id: app id, Faust's group of co-partitioned topics, partition)
    ids = re.findall(rf'^streams_transactional_producer\{{transactional_id="app-{topic}-'
                     r'(\d+)-(\d+)"\} 1\.0$', text, re.M)
    by_group: dict[str, set[int]] = {}
    for group, partition in ids:
        by_group.setdefault(group, set()).add(int(partition))
    assert {0, 1, 2} in by_group.values(), text
    committed = re.search(r'^streams_transactions_total\{outcome="committed"\} (\S+)$',
                          text, re.M)
    assert committed and float(committed.group(1)) >= 3
    assert_exactly_once(kafka_bootstrap, topic, 300)


def test_kill_mid_batch_leaves_nothing_visible_and_the_restart_completes_it_once(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic, total = unique_name, 500
    create_topics(kafka_bootstrap, topic)
    (tmp_path / "hold").touch()
    log = output_dir / "worker.log"
    with eos_worker(kafka_bootstrap, topic, tmp_path, log, TEST_BATCH_SIZE="50") as worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(total)]))
        wait_for(lambda: (tmp_path / "mark").exists(), 60, "the handler to hold a batch")
        held = {tuple(c) for c in json.loads((tmp_path / "mark").read_text())}
        held_ids = {json.loads(r.value)["id"] for r in asyncio.run(
            _records_at(kafka_bootstrap, topic, held))}
        # the held part's records reached the broker, inside its open transaction
        assert held_ids <= set(all_written_ids(kafka_bootstrap, f"{topic}.early"))
        assert not held_ids & set(committed_ids(kafka_bootstrap, f"{topic}.early"))
        worker.kill()

    assert not held_ids & set(committed_ids(kafka_bootstrap, f"{topic}.early"))
    assert not held_ids & set(committed_ids(kafka_bootstrap, f"{topic}.out"))
    (tmp_path / "hold").unlink()
    restart_and_check(kafka_bootstrap, topic, tmp_path, log, total)


def test_failing_handler_aborts_its_transaction_and_the_fixed_restart_counts_exactly(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic, total, failing = unique_name, 200, 57
    create_topics(kafka_bootstrap, topic)
    log = output_dir / "worker.log"
    worker = eos_worker(kafka_bootstrap, topic, tmp_path, log, TEST_DEAD_LETTER="0",
                        FLUSH_MAX_RETRIES="1")
    with worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic,
                            [item(i, fail=i == failing) for i in range(total)]))
        assert worker.process is not None
        assert worker.process.wait(120) != 0
    # the handler sent `failing` to .early (twice: one retry) and counted it, then raised
    assert all_written_ids(kafka_bootstrap, f"{topic}.early")[failing] == 2
    assert failing not in committed_ids(kafka_bootstrap, f"{topic}.early")
    assert failing not in committed_ids(kafka_bootstrap, f"{topic}.out")

    (tmp_path / "fixed").touch()
    restart_and_check(kafka_bootstrap, topic, tmp_path, log, total)


def test_two_workers_killed_twice_lose_and_repeat_nothing(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic, total = unique_name, 20_000
    create_topics(kafka_bootstrap, topic)

    def worker(name: str) -> WorkerProcess:
        return eos_worker(kafka_bootstrap, topic, tmp_path, output_dir / f"{name}.log",
                          DATA_DIR=str(tmp_path / f"data-{name}"))

    a, b = worker("a").start(), worker("b").start()
    try:
        a.wait_ready(120)
        b.wait_ready(120)
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(total)]))
        for victim, remaining in ((a, total * 2 // 3), (b, total // 3)):
            wait_for(lambda r=remaining: lag(kafka_bootstrap, topic) < r, 300,
                     f"fewer than {remaining} records left")
            victim.kill()
            victim.start()
        wait_for(lambda: lag(kafka_bootstrap, topic) == 0, 420, "every record committed")
        a.wait_ready(120)
        b.wait_ready(120)
        assert_exactly_once(kafka_bootstrap, topic, total)
        wait_for_exact_counts(a, total)
    finally:
        a.stop()
        b.stop()


def active_records_replayed(worker: WorkerProcess) -> float:
    """Changelog records of `eos_counts` the worker has replayed into active partitions."""
    return sum(sample.value
               for family in text_string_to_metric_families(metric_samples(worker))
               for sample in family.samples
               if sample.name == "streams_table_recovery_records_total"
               and sample.labels.get("table") == "eos_counts"
               and sample.labels.get("kind") == "active")


def source_partitions(worker: WorkerProcess, topic: str) -> set[int] | None:
    status, body = worker.request("/ready")
    if status != 200:
        return None
    return {int(tp[len(topic) + 1:-1]) for tp in body["assigned"] if tp.startswith(f"{topic}[")}


def test_a_worker_keeping_its_partitions_replays_none_of_its_own_changes(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    """The changelog offset a table partition is complete up to is recorded when its batch
    part commits. Faust kept it by changelog partition and wrote it for the source
    partitions committed, so never: a worker keeping a partition through a rebalance
    replayed every change it had written itself."""
    topic, total = unique_name, 3_000
    create_topics(kafka_bootstrap, topic)

    def worker(name: str) -> WorkerProcess:
        return eos_worker(kafka_bootstrap, topic, tmp_path, output_dir / f"{name}.log",
                          DATA_DIR=str(tmp_path / f"data-{name}"))

    with worker("a") as a:
        a.wait_ready(120)
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(total)]))
        wait_for(lambda: lag(kafka_bootstrap, topic) == 0, 180, "every record committed")
        with worker("b") as b:
            def shared() -> bool:
                kept, taken = source_partitions(a, topic), source_partitions(b, topic)
                return bool(kept and taken and not kept & taken)

            wait_for(shared, 120, "the second worker to take its share")
            assert active_records_replayed(a) == 0, (
                "the first worker replayed changes it had written itself")
            wait_for_exact_counts(b, total)
    # the partitions it kept kept their open transactions: none was begun again
    assert "Exception in begin_transaction" not in (output_dir / "a.log").read_text()


async def _records_at(bootstrap: str, topic: str, coordinates: set[tuple[int, int]]
                      ) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        records = []
        for partition, offset in sorted(coordinates):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            batch = await consumer.getone()
            records.append(batch)
        return records
    finally:
        await consumer.stop()

