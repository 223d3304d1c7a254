"""A worker with an empty data directory restores its table partitions in bulk, and what it
writes to RocksDB is exactly the changelog: each key's last value, deleted keys absent,
the persisted offset at the changelog's last record. A restore killed midway (SIGKILL)
or stopped midway goes on from what it wrote and ends the same; while it runs, the
worker's HTTP server answers."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from pathlib import Path

import pytest
from rocksdict import AccessType, Options, Rdict
from table_kit import ROOT, TABLE, changelog_ends, counts_env, metric

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import WorkerProcess, send_all, wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 4
OFFSET_KEY = b"__faust\0offset__"  # where Faust's RocksDB store keeps the persisted offset


def changelog(keys: int, writes: int, seed: int) -> tuple[list[tuple[bytes, bytes | None]],
                                                         dict[bytes, bytes]]:
    """`writes` changelog records over `keys` keys, about one in ten a deletion; and the
    table they leave (key -> last value, deleted keys absent)."""
    rng = random.Random(seed)
    records: list[tuple[bytes, bytes | None]] = []
    table: dict[bytes, bytes] = {}
    for i in range(writes):
        key = f"key-{i % keys if i < keys else rng.randrange(keys):07d}".encode()
        if i >= keys and rng.random() < 0.1:
            records.append((key, None))
            table.pop(key, None)
        else:
            value = json.dumps({"count": i, "sum": rng.randrange(10**6)}).encode()
            records.append((key, value))
            table[key] = value
    return records, table


def fill_changelog(bootstrap: str, app_id: str,
                   records: list[tuple[bytes, bytes | None]]) -> None:
    topic = f"{app_id}-{TABLE}-changelog"
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(topic, PARTITIONS, 1,
                                                    {"cleanup.policy": "compact"})]))
    asyncio.run(send_all(bootstrap, topic, records, PARTITIONS))


def stored(data_dir: Path) -> tuple[dict[bytes, bytes], dict[int, int]]:
    """Every key and value of the table's RocksDB partitions (the worker stopped), and
    the persisted offset of each partition."""
    table: dict[bytes, bytes] = {}
    offsets: dict[int, int] = {}
    for partition in range(PARTITIONS):
        [path] = data_dir.rglob(f"{TABLE}-{partition}.db")
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                if key == OFFSET_KEY:
                    offsets[partition] = int(value)
                else:
                    assert key not in table, f"{key!r} is stored in two partitions"
                    table[key] = value
        finally:
            db.close()
    return table, offsets


def replayed(log_text: str) -> int:
    """Changelog records the last restore replayed, from its ready line."""
    found = re.findall(rf"table {TABLE} ready: (nothing|[\d,]+)(?: changelog records)? replayed",
                       log_text)
    assert found, f"no ready line for table {TABLE}"
    return 0 if found[-1] == "nothing" else int(found[-1].replace(",", ""))


def worker_for(bootstrap: str, app_id: str, data_dir: Path) -> WorkerProcess:
    log_path = ROOT / "test-output" / "test_bulk_restore" / f"{app_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return WorkerProcess(ROOT, counts_env(bootstrap, app_id, f"{app_id}-updates", data_dir,
                                          TOPIC_PARTITIONS=str(PARTITIONS),
                                          TABLE_STANDBY_REPLICAS="0",
                                          # the restarted worker waits for the killed one
                                          # to leave the group
                                          BROKER_SESSION_TIMEOUT_S="6"),
                         log_path=log_path)


def test_bulk_restore_into_an_empty_data_dir_equals_the_changelog(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    app_id = f"bulk-restore-{uuid.uuid4().hex[:8]}"
    records, expected = changelog(keys=30_000, writes=120_000, seed=1)
    fill_changelog(kafka_bootstrap, app_id, records)
    ends = changelog_ends(kafka_bootstrap, app_id)
    data_dir = tmp_path / "data"
    worker = worker_for(kafka_bootstrap, app_id, data_dir)
    with worker:
        worker.wait_ready(180)
        assert metric(worker, "streams_table_recovery_records_total", table=TABLE,
                      kind="active") == len(records)
        assert metric(worker, "streams_table_recovery_remaining_records", kind="active") == 0
        assert worker.stop() == 0
    log_text = worker.log_path.read_text() if worker.log_path else ""
    assert re.search(rf"table {TABLE}: {len(records):,} changelog records restored in bulk",
                     log_text), "the restore took the bulk path"
    assert replayed(log_text) == len(records)

    table, offsets = stored(data_dir)
    assert offsets == {p: end - 1 for p, end in ends.items()}
    assert table.keys() == expected.keys()
    assert [k for k in expected if table[k] != expected[k]] == []


@pytest.mark.parametrize("interruption", ["SIGKILL", "SIGTERM"])
def test_a_bulk_restore_interrupted_midway_resumes_and_ends_equal_to_the_changelog(
    kafka_bootstrap: str, tmp_path: Path, interruption: str,
) -> None:
    app_id = f"bulk-resume-{interruption.lower()}-{uuid.uuid4().hex[:8]}"
    records, expected = changelog(keys=100_000, writes=800_000, seed=2)
    fill_changelog(kafka_bootstrap, app_id, records)
    ends = changelog_ends(kafka_bootstrap, app_id)
    data_dir = tmp_path / "data"
    worker = worker_for(kafka_bootstrap, app_id, data_dir)
    answer_seconds: list[float] = []
    with worker:
        def restoring() -> float | None:
            assert worker.process is not None and worker.process.poll() is None
            asked = time.monotonic()
            status, _ = worker.request("/ready")
            answer_seconds.append(time.monotonic() - asked)
            assert status != 200, "the restore ended before it could be interrupted"
            done = metric(worker, "streams_table_recovery_records_total", table=TABLE,
                          kind="active")
            return done or None

        done_before_kill = wait_for(restoring, 120, "the bulk restore to write records",
                                    interval=0.05)
        if interruption == "SIGKILL":
            worker.kill()
        else:  # a shutdown stops the restore between two write batches
            began = time.monotonic()
            assert worker.stop() == 0
            assert time.monotonic() - began < 15
        assert 0 < done_before_kill < len(records)
        # the restore lets the event loop run between steps: the worker answers meanwhile
        assert max(answer_seconds) < 1.0, f"/ready took {max(answer_seconds):.2f}s"
        # What the interrupted restore had made durable (the metric above lags by up to
        # a second, in which a restore of this size may have ended)
        _, offsets_at_stop = stored(data_dir)
        left = sum(end - 1 - offsets_at_stop.get(p, -1) for p, end in ends.items())

        worker.start()
        worker.wait_ready(180)
        assert worker.stop() == 0
    log_text = worker.log_path.read_text() if worker.log_path else ""
    assert replayed(log_text) == left  # resumed from the offsets persisted with the data

    table, offsets = stored(data_dir)
    assert offsets == {p: end - 1 for p, end in ends.items()}
    assert table.keys() == expected.keys()
    assert [k for k in expected if table[k] != expected[k]] == []
