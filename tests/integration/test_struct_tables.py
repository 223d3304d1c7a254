"""Tables whose values are msgspec Structs: written by a batch agent, read over HTTP, and
restored from the changelog into an empty data directory, on a real broker and RocksDB."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import WorkerProcess, committed_lag, send_all, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def worker_env(bootstrap: str, app_id: str, topic: str, data_dir: Path) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": app_id, "DATA_DIR": str(data_dir),
            "DEPLOYMENT_MODULES": "tests.deployments.struct_totals", "TEST_TOPIC": topic,
            "TABLE_STANDBY_REPLICAS": "0"}


def test_struct_values_are_served_and_restored_exactly(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic, app_id = unique_name, f"app-{unique_name}"
    records = [(f"card-{i % 7}".encode(), json.dumps({"amount": i}).encode())
               for i in range(300)]
    expected = {f"card-{k}": {"count": len(range(k, 300, 7)), "sum": sum(range(k, 300, 7))}
                for k in range(7)}
    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(topic, 3, 1)]))
    asyncio.run(send_all(kafka_bootstrap, topic, records, 3))

    with WorkerProcess(ROOT, worker_env(kafka_bootstrap, app_id, topic, tmp_path / "first"),
                       log_path=output_dir / "first.log") as worker:
        worker.wait_ready()
        wait_for(lambda: asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 0,
                 90, "every payment to be committed")
        served = {key: worker.get_json(f"/api/tables/totals/{key}")["value"]
                  for key in expected}
    assert served == expected

    # a new worker with an empty data directory rebuilds the table from its changelog
    with WorkerProcess(ROOT, worker_env(kafka_bootstrap, app_id, topic, tmp_path / "second"),
                       log_path=output_dir / "second.log") as worker:
        worker.wait_ready()
        restored = {key: worker.get_json(f"/api/tables/totals/{key}")["value"]
                    for key in expected}
        listed = {entry["key"]: entry["value"]
                  for entry in worker.get_json("/api/tables/totals?limit=100")["entries"]}
    assert restored == expected
    assert listed == expected
