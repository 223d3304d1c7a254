"""Tables: coalesced vs per-record writes, and restoring a table from its changelog.

1. The table step. The same updates (`BENCH_TABLE_UPDATES`, default 200,000; keys drawn
   from 1,000 hot keys with Zipf weights 1/rank; 3 partitions) are processed in batches
   of 1,000 by two real worker processes (`bench/deployments/table_writes.py`): one
   writes through `PerKeyTable.batch()` (a key updated N times in a batch is written
   once), the other writes the table once per record. Reported: changelog records each
   wrote (from the changelog's end offsets) and msgs/s from the worker being ready to
   every update being committed.
2. Recovery. A changelog of `BENCH_TABLE_KEYS` keys (default 1,000,000; raw key bytes,
   JSON values, as tables write it) is produced straight to the topic, and a fresh worker
   with an empty data directory restores it: keys/s over the restore (the worker's
   "table ... ready" log line) and from process start to `/ready`. Baseline in the same
   run: the same keys and values written straight into rocksdict in WriteBatches of 1,000
   (the size of Faust's recovery buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict, WriteBatch

from bench.bench_consumer import wait_committed
from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import WorkerProcess, end_offsets, send_all
from tests.support.kafka_local import kafka_for_session

ROOT = Path(__file__).resolve().parent.parent
UPDATES = int(os.environ.get("BENCH_TABLE_UPDATES", "200000"))
KEYS = int(os.environ.get("BENCH_TABLE_KEYS", "1000000"))
HOT_KEYS = 1_000
BATCH = 1_000
PARTITIONS = 3  # as bench_consumer, whose wait_committed reads 3
TABLE = "sums"
LOGS = Path("test-output")


def worker_env(bootstrap: str, app_id: str, topic: str, data_dir: str,
               **extra: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": app_id, "DATA_DIR": data_dir,
            "DEPLOYMENT_MODULES": "bench.deployments.table_writes", "BENCH_TOPIC": topic,
            "BENCH_TABLE": TABLE, "BENCH_BATCH": str(BATCH),
            "TOPIC_PARTITIONS": str(PARTITIONS), **extra}


def check_values(worker: WorkerProcess, expected: dict[str, int], keys: Iterable[str]) -> None:
    for key in keys:
        body = worker.get_json(f"/api/tables/{TABLE}/{key}")
        if body["value"] != expected[key]:
            raise AssertionError(f"{key}: table has {body['value']}, expected {expected[key]}")


def skewed_updates() -> tuple[list[tuple[bytes, bytes]], dict[str, int]]:
    """The updates of the table step and the sum each key must reach."""
    rng = random.Random(3)
    names = [f"hot-{rank:04d}" for rank in range(HOT_KEYS)]
    drawn = rng.choices(names, weights=[1 / (rank + 1) for rank in range(HOT_KEYS)],
                        k=UPDATES)
    expected: dict[str, int] = defaultdict(int)
    records = []
    for name in drawn:
        amount = rng.randint(1, 100)
        expected[name] += amount
        records.append((name.encode(), json.dumps({"amount": amount}).encode()))
    return records, dict(expected)


def table_step(bootstrap: str, tmp: str, writes: str,
               updates: list[tuple[bytes, bytes]], expected: dict[str, int]) -> dict[str, Any]:
    app_id = f"bench-tables-{writes.replace('_', '-')}-{random.randrange(1 << 30):x}"
    topic = f"{app_id}-updates"
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(topic, PARTITIONS, 1)]))
    asyncio.run(send_all(bootstrap, topic, updates))
    worker = WorkerProcess(ROOT, worker_env(bootstrap, app_id, topic, f"{tmp}/{writes}",
                                            BENCH_TABLE_WRITES=writes, LOG_LEVEL="WARNING"),
                           log_path=LOGS / f"bench-tables-{writes}.log")
    with worker:
        worker.wait_ready(180)
        began = time.monotonic()
        assert worker.process is not None
        asyncio.run(wait_committed(bootstrap, app_id, topic, UPDATES, 1800, worker.process))
        seconds = time.monotonic() - began
        check_values(worker, expected, sorted(expected)[:20])
    changelog = sum(asyncio.run(end_offsets(bootstrap, f"{app_id}-{TABLE}-changelog")).values())
    return {"msgs_per_s": UPDATES / seconds, "changelog_records": changelog,
            "seconds": seconds}


def changelog_records() -> list[tuple[bytes, bytes]]:
    """`KEYS` keys with JSON int values, as a table's changelog holds them."""
    return [(f"key-{i:07d}".encode(), str(i % 1000).encode()) for i in range(KEYS)]


def rocksdict_rate(tmp: str, records: list[tuple[bytes, bytes]]) -> float:
    """Keys/s writing `records` into one rocksdict database in WriteBatches of 1,000."""
    db = Rdict(f"{tmp}/rocksdict-baseline", Options(raw_mode=True))
    try:
        began = time.monotonic()
        for start in range(0, len(records), BATCH):
            batch = WriteBatch(raw_mode=True)
            for key, value in records[start:start + BATCH]:
                batch.put(key, value)
            db.write(batch)
        return len(records) / (time.monotonic() - began)
    finally:
        db.close()


def recovery(bootstrap: str, tmp: str) -> dict[str, Any]:
    app_id = f"bench-recovery-{random.randrange(1 << 30):x}"
    changelog = f"{app_id}-{TABLE}-changelog"
    records = changelog_records()
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(changelog, PARTITIONS, 1,
                                                    {"cleanup.policy": "compact"})]))
    asyncio.run(send_all(bootstrap, changelog, records))
    baseline = rocksdict_rate(tmp, records)
    log_path = LOGS / "bench-tables-recovery.log"
    log_path.unlink(missing_ok=True)
    worker = WorkerProcess(ROOT, worker_env(bootstrap, app_id, f"{app_id}-updates",
                                            f"{tmp}/recovery", LOG_LEVEL="INFO"),
                           log_path=log_path)
    with worker:
        began = time.monotonic()
        worker.wait_ready(KEYS / 500 + 300)
        to_ready = time.monotonic() - began
        check_values(worker, {k.decode(): int(v) for k, v in records[:: KEYS // 10 or 1]},
                     [k.decode() for k, _ in records[:: KEYS // 10 or 1]])
    match = re.search(rf"table {TABLE} ready: ([\d,]+) changelog records replayed in "
                      r"([\d.]+)s", log_path.read_text())
    if match is None:
        raise AssertionError(f"no restore line for table {TABLE} in {log_path}")
    replayed, seconds = int(match.group(1).replace(",", "")), float(match.group(2))
    if replayed != KEYS:
        raise AssertionError(f"the worker replayed {replayed:,} records, not {KEYS:,}")
    return {"keys": KEYS, "restore_keys_per_s": KEYS / seconds, "restore_s": seconds,
            "start_to_ready_s": to_ready, "rocksdict_keys_per_s": baseline}


def run(bootstrap_servers: str | None = None) -> dict[str, Any]:
    LOGS.mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack:
        bootstrap = bootstrap_servers or stack.enter_context(kafka_for_session())
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        updates, expected = skewed_updates()
        coalesced = table_step(bootstrap, tmp, "batch", updates, expected)
        per_record = table_step(bootstrap, tmp, "per_record", updates, expected)
        restore = recovery(bootstrap, tmp)
    result = {
        "updates": UPDATES,
        "keys_updated": len(expected),
        "coalesced": coalesced,
        "per_record": per_record,
        "changelog_reduction": per_record["changelog_records"] / coalesced["changelog_records"],
        "speedup": coalesced["msgs_per_s"] / per_record["msgs_per_s"],
        "recovery": restore,
        "restore_vs_rocksdict": restore["restore_keys_per_s"] / restore["rocksdict_keys_per_s"],
    }
    print(f"tables ({UPDATES:,} updates over {len(expected):,} of {HOT_KEYS:,} hot keys, "
          f"batch {BATCH:,}, {PARTITIONS} partitions)")
    for name in ("coalesced", "per_record"):
        figures = result[name]
        print(f"  {name:<11} {figures['msgs_per_s']:>9,.0f} msg/s  "
              f"{figures['changelog_records']:>9,} changelog records")
    print(f"  coalesced / per record   {result['speedup']:.2f}x msg/s, "
          f"{result['changelog_reduction']:.1f}x fewer changelog records")
    print(f"restore of {KEYS:,} keys from the changelog")
    print(f"  worker restore     {restore['restore_keys_per_s']:>10,.0f} keys/s "
          f"({restore['restore_s']:.1f} s; {restore['start_to_ready_s']:.1f} s start to ready)")
    print(f"  rocksdict direct   {restore['rocksdict_keys_per_s']:>10,.0f} keys/s")
    print(f"  restore / rocksdict      {result['restore_vs_rocksdict']:.3f}x")
    return result
