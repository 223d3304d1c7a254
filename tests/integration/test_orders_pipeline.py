"""The orders slice end to end on a real broker: produce, batch agent, RocksDB table, view."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.testing import (
    WorkerProcess,
    committed_lag,
    produce_orders,
    table_matches,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 10_000
CUSTOMERS = 1_000


def totals_match(worker: WorkerProcess, expected: dict[str, dict[str, int]]) -> bool:
    return table_matches(worker, "customer_totals", expected)


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[tuple[WorkerProcess, dict[str, dict[str, int]], Path]]:
    app_id = f"orders-it-{random.randrange(1 << 30):x}"
    data_dir = tmp_path_factory.mktemp("worker-data")
    log_dir = ROOT / "test-output" / "test_orders_pipeline"
    log_dir.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": app_id,
        "DATA_DIR": str(data_dir), "FLUSH_INTERVAL_MS": "200",
    }, log_path=log_dir / "worker.log")
    with worker:
        worker.wait_ready()
        expected = asyncio.run(produce_orders(kafka_bootstrap, app_id, ORDERS, CUSTOMERS))
        yield worker, expected, data_dir


def test_table_counts_and_sums_equal_what_was_produced(pipeline) -> None:
    worker, expected, _ = pipeline
    wait_for(lambda: totals_match(worker, expected), 120, "table totals to match")
    some_customer = next(iter(expected))
    body = worker.get_json(f"/api/tables/customer_totals/{some_customer}")
    assert body == {"table": "customer_totals", "key": some_customer,
                    "value": expected[some_customer]}
    assert sum(t["orders"] for t in expected.values()) == ORDERS


def test_unknown_key_and_table_answer_404_with_a_message(pipeline) -> None:
    worker, _, _ = pipeline
    status, body = worker.request("/api/tables/customer_totals/nobody-ordered")
    assert status == 404
    assert "nobody-ordered" in body["error"]
    status, body = worker.request("/api/tables/no_such_table/x")
    assert status == 404
    assert "no_such_table" in body["error"]


def test_state_survives_restart_and_is_rebuilt_from_changelog(pipeline) -> None:
    worker, expected, data_dir = pipeline
    wait_for(lambda: totals_match(worker, expected), 120, "table totals to match")

    assert worker.stop() == 0
    assert any(data_dir.rglob("*.sst")) or any(data_dir.rglob("CURRENT")), \
        "RocksDB files on disk"
    worker.start()
    worker.wait_ready()
    assert totals_match(worker, expected), "state after restart with the data directory"

    assert worker.stop() == 0
    shutil.rmtree(data_dir)
    data_dir.mkdir()
    worker.start()
    worker.wait_ready()
    assert totals_match(worker, expected), "state rebuilt from the changelog topic"


def test_offsets_are_committed_once_processed(pipeline, kafka_bootstrap: str) -> None:
    worker, expected, _ = pipeline
    wait_for(lambda: totals_match(worker, expected), 120, "table totals to match")

    wait_for(lambda: asyncio.run(committed_lag(kafka_bootstrap, worker.env["APP_ID"],
                                               "orders")) == 0,
             60, "committed offsets to reach the end")


def test_any_worker_answers_any_key(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Keys owned by the other worker are forwarded to it and answered correctly."""
    app_id = f"orders-two-{random.randrange(1 << 30):x}"
    log_dir = ROOT / "test-output" / "test_any_worker_answers_any_key"
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = [WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": app_id,
        "DATA_DIR": str(tmp_path / name), "FLUSH_INTERVAL_MS": "200",
    }, log_path=log_dir / f"worker-{name}.log") for name in ("a", "b")]
    with workers[0], workers[1]:
        def both_own_partitions() -> bool:
            topic = {"orders[0]", "orders[1]", "orders[2]"}
            owned = [assigned & topic for w in workers
                     if (assigned := w.ready_assignment()) is not None]
            return len(owned) == 2 and all(owned) and not owned[0] & owned[1]

        wait_for(both_own_partitions, 120, "two workers sharing the orders partitions")
        expected = asyncio.run(produce_orders(kafka_bootstrap, app_id, 2_000, 200))
        for worker in workers:
            wait_for(lambda w=worker: totals_match(w, expected), 120,
                     f"every key answered through {worker.url}")
