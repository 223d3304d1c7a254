"""A worker that lost its data directory rebuilds its table from the changelog, visibly."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from table_kit import (
    ROOT,
    TABLE,
    changelog_ends,
    counts_env,
    metric,
    produce_updates,
    value_of,
)

from streams.testing import WorkerProcess, committed_lag, wait_for

pytestmark = pytest.mark.integration

UPDATES = 200_000
KEYS = 20_000
PARTITIONS = 4
SAMPLE = 2_000
DEADLINE = 300


def watch_recovery(worker: WorkerProcess) -> tuple[list[str], dict[str, float]]:
    """Poll /ready from process start until 200: every 503 reason, and metrics seen
    while active records were left to restore."""
    reasons: list[str] = []
    during: dict[str, float] = {}

    def ready() -> bool:
        assert worker.process is not None and worker.process.poll() is None, "worker exited"
        status, body = worker.request("/ready")
        reasons.extend(body.get("reasons", []))
        if status == 200:
            return True
        left = metric(worker, "streams_table_recovery_remaining_records", table=TABLE,
                      kind="active")
        if left > 0 and not during:
            during["remaining"] = left
            during["recovered"] = metric(worker, "streams_tables_recovered")
        return False

    wait_for(ready, DEADLINE, "the worker to restore its table and become ready",
             interval=0.1)
    return reasons, during


def mismatches(worker: WorkerProcess, expected: dict[str, Any], keys: list[str]) -> list[str]:
    with ThreadPoolExecutor(4) as pool:
        values = list(pool.map(lambda key: value_of(worker, key), keys))
    return [f"{key}: {value} != {expected[key]}"
            for key, value in zip(keys, values, strict=True) if value != expected[key]]


def test_worker_without_data_dir_restores_every_key_from_the_changelog(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    app_id = f"recovery-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-updates"
    data_dir = tmp_path / "data"
    log_path = ROOT / "test-output" / "test_table_recovery" / f"{app_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # Faust's per-record path (standby copies, small tails), slow enough to watch; the bulk
    # path is tested in test_bulk_restore.py. Each batch writes its own changes, so the
    # changelog is long enough to watch being replayed.
    worker = WorkerProcess(ROOT, counts_env(kafka_bootstrap, app_id, topic, data_dir,
                                            TOPIC_PARTITIONS=str(PARTITIONS),
                                            TABLE_BULK_RESTORE_MIN_RECORDS=str(10**12),
                                            COMMIT_INTERVAL_MS="0",
                                            # A restore of a few seconds shows progress
                                            # lines when they come every second.
                                            TABLE_RECOVERY_LOG_INTERVAL_S="1"),
                           log_path=log_path)
    with worker:
        worker.wait_ready()
        expected = asyncio.run(produce_updates(kafka_bootstrap, topic, PARTITIONS, UPDATES,
                                               KEYS, app_id))
        wait_for(lambda: asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 0,
                 DEADLINE, f"{UPDATES:,} updates to be processed and committed", interval=1)
        assert worker.stop() == 0

        shutil.rmtree(data_dir)
        log_before = log_path.read_text()
        worker.start()
        reasons, during = watch_recovery(worker)
        log_lines = log_path.read_text()[len(log_before):]

        changelog_records = sum(changelog_ends(kafka_bootstrap, app_id).values())
        left = [int(m.group(1).replace(",", "")) for reason in reasons
                if (m := re.search(r"recovering from their changelogs \((\d+) records left",
                                   reason))]
        assert left and 0 < max(left) <= changelog_records, reasons[-5:]
        assert during["remaining"] > 0 and during["recovered"] == 0, during

        restored = metric(worker, "streams_table_recovery_records_total", table=TABLE,
                          kind="active")
        assert restored == changelog_records
        assert metric(worker, "streams_table_recovery_remaining_records", kind="active") == 0
        assert metric(worker, "streams_tables_recovered") == 1
        assert re.search(rf"restoring table {TABLE}: [\d,]+ of [\d,]+ records \(\d+%\) at "
                         r"[\d,]+ records/s, [\d,]+ left; partition done/total: 0: \d+/\d+",
                         log_lines), "a periodic progress line"
        assert f"table {TABLE} ready: {changelog_records:,} changelog records replayed in" \
            in log_lines

        wait_for(lambda: metric(worker, "streams_table_keys", table=TABLE) == KEYS,
                 60, f"the restored table to count {KEYS:,} keys")
        sample = random.Random(5).sample(sorted(expected), SAMPLE)
        assert mismatches(worker, expected, sample) == []
