"""Observability of a real worker on a real broker: /metrics, /ready and JSON logs.

The worker is `worker.py`'s app run by `pausable_worker.py`, which adds test-only views to
pause and resume consumption: lag has to build up while the worker still serves
`/metrics`, and a stopped worker serves nothing (see that module's docstring).

Counters are compared as differences from a reading taken once the worker caught up with
the `orders` topic, which other tests of the session also write to.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.testing import WorkerProcess, committed_lag, produce_orders, wait_for
from tests.support.kafka_local import LocalKafka

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PAUSABLE_WORKER = [sys.executable, str(Path(__file__).with_name("pausable_worker.py")),
                   "worker"]
TOPIC = "orders"
TABLE = "customer_totals"
# The lag is read from the cluster every 5 s and Faust commits every 2.8 s; deadlines leave
# room for a machine shared with other brokers.
DEADLINE = 120.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# --- reading a worker ---------------------------------------------------------------------


def scrape(worker: WorkerProcess) -> Samples:
    """Every sample of the worker's /metrics, parsed as Prometheus does."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and wanted <= set(sample_labels))


def series(samples: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    wanted = set(labels.items())
    return {sample_labels: value for (sample, sample_labels), value in samples.items()
            if sample == name and wanted <= set(sample_labels)}


def lag_of(samples: Samples) -> dict[str, float]:
    """Lag of each partition of the orders topic, by partition."""
    return {dict(labels)["partition"]: value
            for labels, value in series(samples, "streams_consumer_lag", topic=TOPIC).items()}


def scrape_if(worker: WorkerProcess, condition: Callable[[Samples], bool]) -> Samples | None:
    """The worker's samples if they meet `condition` (for `wait_for`), else None."""
    samples = scrape(worker)
    return samples if condition(samples) else None


def keys_counted_after(worker: WorkerProcess, moment: float) -> Samples | None:
    """The samples once the table keys were counted after `moment` (counted every 10 s)."""
    return scrape_if(worker, lambda s: total(
        s, "streams_table_keys_updated_timestamp_seconds") > moment)


def caught_up_since(worker: WorkerProcess, since: float) -> Samples | None:
    """The samples once the lag read after `since` is 0 on every partition, else None."""
    samples = scrape(worker)
    lag = lag_of(samples)
    fresh = total(samples, "streams_consumer_lag_updated_timestamp_seconds") > since
    return samples if fresh and len(lag) == 3 and not any(lag.values()) else None


def start_worker(env: dict[str, str], logs: Path, command: list[str] | None = None,
                 ) -> WorkerProcess:
    """A worker whose stdout and stderr go to separate files (logs are on stderr)."""
    worker = WorkerProcess(ROOT, env, command=command or PAUSABLE_WORKER)
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "stdout.log", "ab") as out, open(logs / "stderr.log", "ab") as err:
        worker.process = subprocess.Popen([*worker.command, "-l", "info"], cwd=ROOT,
                                          env=worker.env, stdout=out, stderr=err)
    return worker


def worker_env(bootstrap: str, app_id: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": app_id,
            "DATA_DIR": str(data_dir), "FLUSH_INTERVAL_MS": "200", **extra}


async def produce_raw(bootstrap: str, topic: str,
                      records: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


# --- one worker for the counter, lag and log tests ------------------------------------------


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[WorkerProcess, Path]]:
    app_id = f"obs-it-{uuid.uuid4().hex[:8]}"
    logs = ROOT / "test-output" / "test_observability" / app_id
    env = worker_env(kafka_bootstrap, app_id, tmp_path_factory.mktemp("obs-data"),
                     LOG_FORMAT="json")
    process = start_worker(env, logs)
    try:
        process.wait_ready()
        yield process, logs
    finally:
        process.stop()


def test_counters_equal_what_was_produced_and_processed(worker, kafka_bootstrap: str) -> None:
    process, _ = worker
    before = wait_for(lambda: caught_up_since(process, 0), DEADLINE, "the worker to catch up")
    caught_up_at = time.time()
    counted_before = wait_for(lambda: keys_counted_after(process, caught_up_at), DEADLINE,
                              "a key count taken after the catch-up")
    prefix = f"counted-{uuid.uuid4().hex[:6]}"
    good, customers, bad = 1200, 150, 7

    asyncio.run(produce_orders(kafka_bootstrap, prefix, good, customers))
    asyncio.run(produce_raw(kafka_bootstrap, TOPIC,
                            [(f"{prefix}-bad".encode(), b"not json") for _ in range(bad)]))
    produced_at = time.time()
    after = wait_for(lambda: caught_up_since(process, produced_at), DEADLINE,
                     "the lag to return to 0 after producing")
    # The table keys are counted on a longer interval than the lag is read.
    keys_before = total(counted_before, "streams_table_keys", table=TABLE)
    after = wait_for(
        lambda: scrape_if(process, lambda s: total(s, "streams_table_keys", table=TABLE)
                          == keys_before + customers),
        DEADLINE, "the table key count to include the new customers")

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("streams_consumer_messages_total", topic=TOPIC) == good + bad
    assert grew("streams_consumer_dead_letters_total", topic=TOPIC) == bad
    assert grew("streams_consumer_batch_size_sum") == good
    assert grew("streams_consumer_batch_seconds_count") == grew("streams_consumer_batch_size_count")
    assert grew("streams_consumer_batch_size_count") >= good / 100  # BATCH_SIZE is 100
    assert total(after, "streams_consumer_commit_seconds_count") > 0
    assert total(after, "streams_partitions_assigned", topic=TOPIC, role="active") == 3
    assert total(after, "streams_rebalances_total") >= 1
    assert total(after, "streams_rebalancing") == 0
    assert total(after, "streams_broker_up") == 1
    assert total(after, "streams_consumer_group_state", state="Stable") == 1
    assert total(after, "streams_consumer_group_members") == 1
    assert total(after, "streams_table_recovering") == 0
    assert asyncio.run(committed_lag(kafka_bootstrap, process.env["APP_ID"], TOPIC)) == 0


def test_lag_rises_while_paused_and_returns_to_zero(worker, kafka_bootstrap: str) -> None:
    process, _ = worker
    wait_for(lambda: caught_up_since(process, 0), DEADLINE, "the worker to catch up")
    paused = process.get_json("/test/pause")["paused"]
    assert paused == [f"{TOPIC}[{p}]" for p in range(3)]
    at_pause = total(scrape(process), "streams_consumer_messages_total", topic=TOPIC)
    count = 600
    try:
        asyncio.run(produce_orders(kafka_bootstrap, f"paused-{uuid.uuid4().hex[:6]}", count, 60))
        produced_at = time.time()

        def lag_settled() -> Samples | None:
            # A fetch already waiting when the pause came may still deliver one batch, so
            # the lag is what the broker says is left: everything not processed since.
            samples = scrape(process)
            lag = sum(lag_of(samples).values())
            processed = total(samples, "streams_consumer_messages_total", topic=TOPIC) - at_pause
            fresh = total(samples, "streams_consumer_lag_updated_timestamp_seconds") > produced_at
            broker = asyncio.run(committed_lag(kafka_bootstrap, process.env["APP_ID"], TOPIC))
            return samples if fresh and lag > 0 and lag == broker == count - processed else None

        samples = wait_for(lag_settled, DEADLINE, "the lag to show the records held back")
        assert sum(lag_of(samples).values()) >= count / 2
    finally:
        process.get_json("/test/resume")
    resumed_at = time.time()
    after = wait_for(lambda: caught_up_since(process, resumed_at), DEADLINE,
                     "the lag to return to 0 after resuming")
    assert total(after, "streams_consumer_messages_total", topic=TOPIC) - at_pause == count


def test_json_logs_parse_line_by_line_and_carry_record_fields(worker, kafka_bootstrap: str,
                                                               ) -> None:
    process, logs = worker
    key = f"logged-{uuid.uuid4().hex[:6]}"
    asyncio.run(produce_raw(kafka_bootstrap, TOPIC, [(key.encode(), b"{broken")]))

    def entries() -> list[dict[str, Any]]:
        # Every line of stderr is one JSON object; a half-written last line is not yet one.
        text = (logs / "stderr.log").read_text()
        complete = text[:text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines()]

    def dead_letter_entry() -> dict[str, Any] | None:
        found = [e for e in entries() if e["message"].startswith("dead-lettered")
                 and e.get("offset") is not None and str(e.get("offset")) in e["message"]]
        return found[-1] if found else None

    entry = wait_for(dead_letter_entry, DEADLINE, "the dead-letter log line")
    assert entry["topic"] == TOPIC
    assert entry["level"] == "ERROR"
    assert entry["logger"].startswith("streams.")
    assert isinstance(entry["partition"], int) and isinstance(entry["offset"], int)
    assert f"{TOPIC}[{entry['partition']}]@{entry['offset']}" in entry["message"]
    for line in entries():
        assert {"timestamp", "level", "logger", "message"} <= line.keys(), line


def test_secrets_are_not_logged(kafka_bootstrap: str, tmp_path: Path) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    env = worker_env(kafka_bootstrap, f"obs-secret-{uuid.uuid4().hex[:8]}", tmp_path,
                     LOG_LEVEL="DEBUG", LOG_FORMAT="json", BROKER_CONNECT_TIMEOUT_S="3",
                     KAFKA_SASL_MECHANISM="PLAIN", KAFKA_SASL_USERNAME="operator",
                     KAFKA_SASL_PASSWORD=password)
    # The broker speaks PLAINTEXT: the SASL handshake fails and the worker gives up, having
    # logged its start-up with the credentials in hand.
    process = start_worker(env, tmp_path / "logs", command=[sys.executable, "worker.py",
                                                            "worker"])
    assert process.process is not None
    assert process.process.wait(timeout=DEADLINE) != 0
    output = ((tmp_path / "logs" / "stdout.log").read_text()
              + (tmp_path / "logs" / "stderr.log").read_text())
    assert "DEBUG" in output and "error: no Kafka broker answered" in output, output[-2000:]
    assert password not in output


# --- readiness --------------------------------------------------------------------------------


def changelog_records(count: int, prefix: str) -> list[tuple[bytes, bytes]]:
    """Changelog records of `count` customers, as the orders agent writes them."""
    value = {"orders": 1, "amount_cents": 100,
             "__faust": {"ns": "tables.customers.CustomerTotals"}}
    return [(json.dumps(f"{prefix}-{i}").encode(), json.dumps(value).encode())
            for i in range(count)]


def watch_start(worker: WorkerProcess) -> tuple[list[dict[str, Any]], Samples]:
    """Poll /ready and /metrics from process start until ready; every 503 body seen."""
    not_ready: list[dict[str, Any]] = []
    recovering: Samples = {}

    def ready() -> bool:
        if worker.process is not None and worker.process.poll() is not None:
            raise AssertionError(f"worker exited with {worker.process.returncode}")
        status, body = worker.request("/ready")
        if status == 200:
            return True
        not_ready.append(body)
        samples = scrape(worker)
        if total(samples, "streams_table_recovery_remaining", kind="active") > 0:
            recovering.update(samples)
        return False

    wait_for(ready, DEADLINE, "the worker to become ready", interval=0.05)
    return not_ready, recovering


def test_ready_is_false_before_assignment_and_during_recovery(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    app_id = f"obs-ready-{uuid.uuid4().hex[:8]}"
    logs = ROOT / "test-output" / "test_observability" / app_id
    first = start_worker(worker_env(kafka_bootstrap, app_id, tmp_path / "first"), logs / "1")
    try:
        first.wait_ready()  # creates the changelog topic
        wait_for(lambda: caught_up_since(first, 0), DEADLINE, "the first worker to catch up")
        started = time.time()
        keys_before = wait_for(lambda: keys_counted_after(first, started), DEADLINE,
                               "a key count taken after the catch-up")
    finally:
        assert first.stop() == 0
    table_keys = int(total(keys_before, "streams_table_keys", table=TABLE))

    # A big changelog, read record by record (not in bulk), makes recovery last long enough
    # to be seen from outside.
    restored = 40_000
    asyncio.run(produce_raw(kafka_bootstrap, f"{app_id}-{TABLE}-changelog",
                            changelog_records(restored, app_id)))

    second = start_worker(worker_env(kafka_bootstrap, app_id, tmp_path / "second",
                                     TABLE_BULK_RESTORE_MIN_RECORDS=str(10**12)), logs / "2")
    try:
        not_ready, recovering = watch_start(second)
        reasons = [reason for body in not_ready for reason in body["reasons"]]
        assert all(body["ready"] is False for body in not_ready)
        assert any(r == "no partitions assigned" for r in reasons), reasons[:5]
        assert any(r.startswith("tables are recovering") for r in reasons), reasons[-5:]
        assert total(recovering, "streams_table_recovering") == 1
        assert total(recovering, "streams_table_recovery_remaining", table=TABLE,
                     kind="active") > 0

        body = second.get_json("/ready")
        assert body["ready"] is True and f"{TOPIC}[0]" in body["assigned"]
        samples = wait_for(
            lambda: scrape_if(second, lambda s: total(s, "streams_table_keys", table=TABLE)
                              == table_keys + restored),
            DEADLINE, "the table key count to include the restored keys")
        assert total(samples, "streams_table_recovering") == 0
        assert total(samples, "streams_table_recovery_remaining", kind="active") == 0
    finally:
        second.stop()


# --- broker outage ----------------------------------------------------------------------------


@pytest.fixture
def own_broker() -> Iterator[LocalKafka]:
    """A broker of this test's own, to stop and start without disturbing the others."""
    with LocalKafka() as kafka:
        yield kafka


def test_broker_outage_is_reported_and_recovered(own_broker: LocalKafka, tmp_path: Path,
                                                 ) -> None:
    app_id = f"obs-outage-{uuid.uuid4().hex[:8]}"
    logs = ROOT / "test-output" / "test_observability" / app_id
    process = start_worker(worker_env(own_broker.bootstrap_servers, app_id, tmp_path), logs)
    try:
        process.wait_ready()
        wait_for(lambda: total(scrape(process), "streams_broker_up") == 1, DEADLINE,
                 "the broker to be reported up")

        own_broker.stop_broker(1)

        def reported_down() -> dict[str, Any] | None:
            samples = scrape(process)
            status, body = process.request("/ready")
            down = (total(samples, "streams_broker_up") == 0
                    and total(samples, "streams_broker_errors_total") > 0
                    and len(series(samples, "streams_broker_last_error")) == 1
                    and total(samples, "streams_consumer_group_state", state="Unknown") == 1)
            return body if down and status == 503 else None

        body = wait_for(reported_down, DEADLINE, "the outage to show in /metrics and /ready")
        assert any(r.startswith("Kafka cluster unreachable") for r in body["reasons"]), body
        assert process.request("/health") == (200, {"status": "ok"})

        own_broker.start_broker(1)
        process.wait_ready(timeout=DEADLINE * 2)
        samples = wait_for(
            lambda: scrape_if(process, lambda s: total(s, "streams_broker_up") == 1 and total(
                s, "streams_consumer_group_state", state="Stable") == 1),
            DEADLINE, "the broker to be reported up again")
        assert total(samples, "streams_broker_errors_total") > 0  # the outage stays counted
        assert process.process is not None and process.process.poll() is None
    finally:
        process.stop()


def test_one_broker_of_three_down_is_not_an_outage(kafka_cluster: LocalKafka, tmp_path: Path,
                                                   ) -> None:
    app_id = f"obs-partial-{uuid.uuid4().hex[:8]}"
    logs = ROOT / "test-output" / "test_observability" / app_id
    env = worker_env(kafka_cluster.bootstrap_servers, app_id, tmp_path, TOPIC_REPLICATION="3")
    process = start_worker(env, logs)
    try:
        process.wait_ready()
        errors = total(scrape(process), "streams_broker_errors_total")

        kafka_cluster.stop_broker(1)  # the first bootstrap server
        stopped_at = time.time()
        # Lag read twice more after the stop: at least two probe rounds went by.
        samples = wait_for(
            lambda: scrape_if(process, lambda s: total(
                s, "streams_consumer_lag_updated_timestamp_seconds") > stopped_at + 10),
            DEADLINE, "probe rounds with one broker stopped")
        assert total(samples, "streams_broker_up") == 1
        assert total(samples, "streams_broker_errors_total") == errors
        assert not any(r.startswith("Kafka cluster unreachable")
                       for r in process.request("/ready")[1].get("reasons", []))
    finally:
        process.stop()
