"""Helpers of the table recovery and standby tests (deployment `tests.deployments.counts`).

- `produce_updates` writes `{"amount": n}` updates in bulk (record batches, on the
  partition Kafka's default partitioner gives each key);
- `metric` reads one metric of a worker's `/metrics`, summed over matching labels;
- `changelog_ends` reads the end offsets of the `counts` table's changelog.

Topics are filled and measured with the table benchmark's helpers (bench/bench_tables.py).
"""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.testing import WorkerProcess, end_offsets, send_all

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
    records = []
    for i in range(updates):
        name, amount = names[i % keys], rng.randint(1, 1000)
        expected[name]["count"] += 1
        expected[name]["sum"] += amount
        records.append((name.encode(), json.dumps({"amount": amount}).encode()))
    await send_all(bootstrap, topic, records, partitions)
    return expected


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    """Sum of the worker's samples of `name` whose labels include `labels`."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = set(labels.items())
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and wanted <= set(sample.labels.items()))


def changelog_ends(bootstrap: str, app_id: str) -> dict[int, int]:
    """End offset of each partition of the counts table's changelog topic."""
    return asyncio.run(end_offsets(bootstrap, f"{app_id}-{TABLE}-changelog"))


def value_of(worker: WorkerProcess, key: str) -> Any:
    """The key's value as the worker's table API answers it, or None if it does not."""
    status, body = worker.request(f"/api/tables/{TABLE}/{key}")
    return body["value"] if status == 200 else None
