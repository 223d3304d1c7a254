"""Keyed records from Kafka clients nobody here wrote, with their default partitioners.

The Java client (KafkaProducer/KafkaConsumer, kafka-clients 4.1.1) places keys with
murmur2, kcat (librdkafka) with CRC32 (`consistent_random`). With the matching
`KEY_PARTITIONER_TOPICS`, tables hold every key exactly and every worker of a group answers
every lookup; with the wrong one, the dead letters, `/ready`, the metric and one log line
say which partitioner the records' placement matches. Both clients read what the producer
service wrote. Workers run `tests/deployments/interop.py`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer

from streams.kafka.partitioner import key_partition
from streams.kafka.publisher import Publisher, PublisherConfig
from streams.settings import Settings
from streams.testing import WorkerProcess, wait_for
from streams.web.producer_service import create_producer_web_app
from tests.integration.table_kit import metric
from tests.integration.test_publisher import create_topic
from tests.support.interop import (
    java_consume,
    java_produce,
    kcat_consume,
    kcat_produce,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "test-output" / "test_client_interop"
DEADLINE = 120.0
PARTITIONS = 3
CUSTOMERS = [f"customer-{n:03d}" for n in range(50)]


def orders(count: int = 500) -> tuple[list[tuple[str, str]], dict[str, dict[str, int]]]:
    """`count` orders spread over the 50 customers, and the totals each must reach."""
    records, expected = [], {c: {"orders": 0, "amount_cents": 0} for c in CUSTOMERS}
    for n in range(count):
        customer, amount = CUSTOMERS[n % len(CUSTOMERS)], 100 + (n * 37) % 900
        records.append((customer, json.dumps({"order_id": f"o-{n}", "customer_id": customer,
                                              "amount_cents": amount})))
        expected[customer]["orders"] += 1
        expected[customer]["amount_cents"] += amount
    return records, expected


def interop_worker(bootstrap: str, app_id: str, data_dir: Path, log_name: str,
                   **extra: str) -> WorkerProcess:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": app_id, "DATA_DIR": str(data_dir),
        "DEPLOYMENT_MODULES": "tests.deployments.interop", "TEST_JAVA_TOPIC": f"{app_id}-java",
        "TEST_KCAT_TOPIC": f"{app_id}-kcat", "FLUSH_INTERVAL_MS": "100",
        "RETRY_BACKOFF_MS": "10", "TOPIC_PARTITIONS": str(PARTITIONS), **extra,
    }, log_path=LOG_DIR / f"{log_name}.log")


def dead_letters(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    """The first `count` letters of `<topic>.dlq`: key and headers."""

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(f"{topic}.dlq", bootstrap_servers=bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        letters: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        try:
            while len(letters) < count and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    letters += [{"key": r.key.decode(), **{k: v.decode() for k, v in r.headers}}
                                for r in records]
        finally:
            await consumer.stop()
        return letters

    return asyncio.run(read())


def test_default_partitioners_measured(kafka_bootstrap: str, unique_name: str) -> None:
    """On 12 partitions, where three hashes rarely agree by chance: Java's choice is
    murmur2 for every key, kcat's is CRC32 (librdkafka's consistent_random)."""
    java_topic, kcat_topic = f"{unique_name}-java", f"{unique_name}-kcat"
    for topic in (java_topic, kcat_topic):
        asyncio.run(create_topic(kafka_bootstrap, topic, partitions=12))
    records = [(customer, "{}") for customer in CUSTOMERS]

    java = dict(java_produce(kafka_bootstrap, java_topic, records))
    kcat_produce(kafka_bootstrap, kcat_topic, records)
    kcat = {r.key: r.partition for r in kcat_consume(kafka_bootstrap, kcat_topic)}

    def placed_by(hash_name: str) -> dict[str, int]:
        return {key: key_partition(key.encode(), 12, hash_name) for key in CUSTOMERS}

    assert java == placed_by("murmur2")
    assert kcat == placed_by("consistent_random")
    assert kcat == {key: zlib.crc32(key.encode()) % 12 for key in CUSTOMERS}
    differing = sum(java[key] != kcat[key] for key in CUSTOMERS)
    assert differing > 40, "the two clients' defaults should disagree for most keys"


def test_any_worker_answers_every_key_with_the_matching_setting(kafka_bootstrap: str,
                                                                unique_name: str,
                                                                tmp_path: Path) -> None:
    app_id = unique_name
    java_topic, kcat_topic = f"{app_id}-java", f"{app_id}-kcat"
    workers = [interop_worker(kafka_bootstrap, app_id, tmp_path / w, f"matching-{w}",
                              KEY_PARTITIONER_TOPICS=f"{kcat_topic}:consistent_random")
               for w in ("a", "b")]
    with workers[0], workers[1]:
        def both_own_partitions() -> bool:
            topic = {f"{java_topic}[{p}]" for p in range(PARTITIONS)}
            owned = [assigned & topic for w in workers
                     if (assigned := w.ready_assignment()) is not None]
            return len(owned) == 2 and all(owned) and not owned[0] & owned[1]

        wait_for(both_own_partitions, DEADLINE, "two workers sharing the topics' partitions")
        java_records, expected_java = orders()
        kcat_records, expected_kcat = orders()
        java_produce(kafka_bootstrap, java_topic, java_records)
        kcat_produce(kafka_bootstrap, kcat_topic, kcat_records)

        for table, expected in (("java_totals", expected_java), ("kcat_totals", expected_kcat)):
            for worker in workers:
                def answers(w: WorkerProcess = worker, t: str = table,
                            want: dict[str, dict[str, int]] = expected) -> bool:
                    found = {c: w.request(f"/api/tables/{t}/{c}") for c in CUSTOMERS}
                    return all(status == 200 and body["value"] == want[c]
                               for c, (status, body) in found.items())

                wait_for(answers, DEADLINE, f"{worker.url} to answer every key of {table}")
        listed = {t["name"]: t["key_partitioner"]
                  for t in workers[0].get_json("/api/tables")["tables"]}
        assert listed == {"java_totals": "murmur2", "kcat_totals": "consistent_random"}
        for worker in workers:
            assert metric(worker, "streams_consumer_dead_letters_total") == 0
            assert "partitioner_mismatches" not in worker.get_json("/ready")


def test_wrong_setting_is_diagnosed(kafka_bootstrap: str, unique_name: str,
                                    tmp_path: Path) -> None:
    """Each client's records checked with the other's partitioner (KEY_PARTITIONER for the
    Java topic, a KEY_PARTITIONER_TOPICS entry for kcat's): the misplaced ones are
    dead-lettered with the partitioner their placement matches, counted in the metric and
    in /ready, and summarized in one log line per topic."""
    app_id = unique_name
    java_topic, kcat_topic = f"{app_id}-java", f"{app_id}-kcat"
    worker = interop_worker(kafka_bootstrap, app_id, tmp_path / "data", "wrong",
                            KEY_PARTITIONER="consistent_random",
                            KEY_PARTITIONER_TOPICS=f"{kcat_topic}:murmur2")
    # topic -> (the client's hash and its setting, the table's wrong setting)
    cases = {java_topic: ("murmur2", "murmur2", "consistent_random"),
             kcat_topic: ("crc32", "consistent_random", "murmur2")}
    records, _ = orders()
    with worker:
        worker.wait_ready()
        started = time.monotonic()
        java_produce(kafka_bootstrap, java_topic, records)
        kcat_produce(kafka_bootstrap, kcat_topic, records)

        for topic, (client_hash, right, wrong) in cases.items():
            misplaced = [key for key, _ in records
                         if key_partition(key.encode(), PARTITIONS, right)
                         != key_partition(key.encode(), PARTITIONS, wrong)]
            count = len(misplaced)
            assert count > len(records) / 2
            wait_for(lambda t=topic, h=client_hash, n=count: metric(
                         worker, "streams_partitioner_mismatch_total", topic=t, matches=h) == n,
                     DEADLINE, f"{count} misplaced records of {topic} counted")
            detail = worker.get_json("/ready")["partitioner_mismatches"][topic]
            assert (detail["records"], detail["partitioner"], detail["suggested"]) == (
                len(misplaced), wrong, [right])

            letters = dead_letters(kafka_bootstrap, topic, len(misplaced))
            assert sorted(letter["key"] for letter in letters) == sorted(misplaced)
            # with 3 partitions FNV-1a places about a third of them there too, by chance
            reason = re.compile(
                rf"this record's partition matches {client_hash}( and fnv1a)?, not "
                rf"{'crc32' if wrong == 'consistent_random' else 'murmur2'}: set "
                rf"KEY_PARTITIONER={right}( or fnv1a)? for topic {re.escape(topic)}")
            for letter in letters:
                assert letter["x-error-type"] == "KeyPlacementError"
                assert reason.search(letter["x-error-message"]), letter["x-error-message"]

        def summaries(topic: str) -> list[str]:
            log = (LOG_DIR / "wrong.log").read_text()
            return [line for line in log.splitlines()
                    if f"topic {topic}: " in line and "dead-lettered so far" in line]

        for topic in cases:
            wait_for(lambda t=topic: summaries(t), DEADLINE, f"the summary line of {topic}")
        elapsed = time.monotonic() - started
    for topic, (client_hash, right, _) in cases.items():
        lines = summaries(topic)
        assert len(lines) <= 1 + elapsed // 60
        assert (f"all of them match {client_hash}, not " in lines[0]
                and f"set KEY_PARTITIONER={right} for topic {topic} "
                    f"(KEY_PARTITIONER_TOPICS={topic}:{right})" in lines[0]), lines[0]


async def test_clients_read_what_the_producer_service_wrote(kafka_bootstrap: str,
                                                            unique_name: str) -> None:
    """Keys, values and headers arrive intact; with the topic's KEY_PARTITIONER set to
    librdkafka's, the service puts each key where kcat puts it."""
    topic = unique_name
    await create_topic(kafka_bootstrap, topic, partitions=PARTITIONS)
    settings = Settings(bootstrap_servers=kafka_bootstrap,
                        key_partitioner_topics=((topic, "consistent_random"),))
    records = [{"key": c, "value": {"customer_id": c, "n": n},
                "headers": {"trace": f"t-{n}", "source": "service"}}
               for n, c in enumerate(CUSTOMERS)]
    async with Publisher(settings, PublisherConfig(), client_id="interop") as publisher:
        app = create_producer_web_app(publisher)
        async with TestClient(TestServer(app)) as client:
            response = await client.post(f"/topics/{topic}", json={"records": records})
            assert response.status == 200, await response.text()
    loop = asyncio.get_running_loop()
    kcat_read = await loop.run_in_executor(None, kcat_consume, kafka_bootstrap, topic)
    java_read = await loop.run_in_executor(None, java_consume, kafka_bootstrap, topic,
                                           len(records))
    for read in (kcat_read, java_read):
        assert sorted((r.key, json.loads(r.value), r.headers) for r in read) == sorted(
            (r["key"], r["value"], r["headers"]) for r in records)

    # kcat publishes the same keys: each key stays on one partition
    await loop.run_in_executor(None, kcat_produce, kafka_bootstrap, topic,
                               [(c, "{}") for c in CUSTOMERS])
    everything = await loop.run_in_executor(None, kcat_consume, kafka_bootstrap, topic)
    partitions: dict[str, set[int]] = {}
    for r in everything:
        partitions.setdefault(r.key, set()).add(r.partition)
    assert len(everything) == 2 * len(CUSTOMERS)
    assert all(len(found) == 1 for found in partitions.values())
