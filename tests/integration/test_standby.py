"""Standby replicas: when a worker dies, the other serves its keys without a full replay."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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

from streams.kafka.partitioner import key_partition
from streams.testing import WorkerProcess, committed_lag, wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 4
UPDATES = 40_000
KEYS = 4_000
SESSION_TIMEOUT_S = 6
DEADLINE = 180


def sources(worker: WorkerProcess, topic: str) -> set[int] | None:
    """Partitions of `topic` the worker processes, once it is ready."""
    status, body = worker.request("/ready")
    if status != 200:
        return None
    return {int(tp[len(topic) + 1:-1]) for tp in body["assigned"]
            if tp.startswith(f"{topic}[")}


def test_standby_takes_over_a_killed_worker_without_replaying_its_changelog(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    app_id = f"standby-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-updates"
    log_dir = ROOT / "test-output" / "test_standby" / app_id
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = [WorkerProcess(ROOT, counts_env(
        kafka_bootstrap, app_id, topic, tmp_path / name, TOPIC_PARTITIONS=str(PARTITIONS),
        TABLE_STANDBY_REPLICAS="1", BROKER_SESSION_TIMEOUT_S=str(SESSION_TIMEOUT_S),
    ), log_path=log_dir / f"worker-{name}.log") for name in ("a", "b")]
    with workers[0], workers[1]:
        def split() -> list[set[int]] | None:
            owned = [sources(w, topic) for w in workers]
            if all(owned) and not owned[0] & owned[1]:  # type: ignore[operator]
                return owned  # type: ignore[return-value]
            return None

        owned = wait_for(split, DEADLINE, "two workers sharing the partitions")

        def standbys_shown() -> bool:  # each keeps the other's partitions as standbys
            return all(metric(worker, "streams_partitions_assigned", role="standby",
                              topic=f"{app_id}-{TABLE}-changelog") == PARTITIONS // 2
                       for worker in workers)

        # the gauge is refreshed every second: it may lag the assignment /ready shows
        wait_for(standbys_shown, 10, "the standby partitions in /metrics")

        expected = asyncio.run(produce_updates(kafka_bootstrap, topic, PARTITIONS, UPDATES,
                                               KEYS, app_id))
        wait_for(lambda: asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 0,
                 DEADLINE, "every update processed and committed", interval=1)
        ends = changelog_ends(kafka_bootstrap, app_id)
        key = next(iter(expected))
        partition = key_partition(key.encode(), PARTITIONS)
        owner, survivor = (workers if partition in owned[0] else workers[::-1])
        assert value_of(owner, key) == expected[key]

        def standby_caught_up() -> bool:
            read = metric(survivor, "streams_table_recovery_records_total", table=TABLE,
                          partition=str(partition))
            return read == ends[partition] and metric(
                survivor, "streams_table_recovery_remaining_records", kind="standby") == 0

        wait_for(standby_caught_up, 60, "the standby to read the whole changelog")
        as_standby = metric(survivor, "streams_table_recovery_records_total", table=TABLE,
                            partition=str(partition), kind="standby")
        active_before = metric(survivor, "streams_table_recovery_records_total",
                               table=TABLE, partition=str(partition), kind="active")

        log_before = survivor.log_path.read_text()  # type: ignore[union-attr]
        owner.kill()
        killed_at = time.monotonic()
        wait_for(lambda: sources(survivor, topic) == set(range(PARTITIONS))
                 and value_of(survivor, key) == expected[key],
                 SESSION_TIMEOUT_S + 5, "the survivor to serve the key", interval=0.1)
        took = time.monotonic() - killed_at

        replayed = metric(survivor, "streams_table_recovery_records_total", table=TABLE,
                          partition=str(partition), kind="active") - active_before
        assert as_standby + active_before + replayed == ends[partition]
        assert replayed <= ends[partition] // 10, (
            f"partition {partition}: {replayed} of {ends[partition]} changelog records "
            "replayed after the failover")
        log_after = survivor.log_path.read_text()[len(log_before):]  # type: ignore[union-attr]
        assert f"table {TABLE} ready: " in log_after
        assert f"{partition} ({replayed:.0f} replayed)" in log_after
        print(f"failover in {took:.1f}s; partition {partition}: {as_standby:.0f} records "
              f"kept as standby, {replayed:.0f} replayed as active")

        with ThreadPoolExecutor(4) as pool:
            values = dict(zip(expected, pool.map(lambda k: value_of(survivor, k), expected),
                              strict=True))
        assert values == expected, "every key served by the survivor after the failover"


def test_a_standby_that_joins_behind_keeps_every_key_of_the_backlog(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    """A worker joining a group whose tables already hold data gets standby partitions
    with a changelog backlog, read in the same rebalance that restores its actives. Faust
    empties its changelog queue whenever the flow resumes, which it does again after
    the standbys started (to resume the streams): backlog records already fetched and
    queued by then were dropped while the consumer went on past them, so the standby
    store missed those keys for good, and its persisted offset said it had them. Each key
    is written once here, so any dropped record is a key the survivor cannot serve."""
    app_id = f"standby-behind-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-updates"
    keys = 20_000
    log_dir = ROOT / "test-output" / "test_standby" / app_id
    log_dir.mkdir(parents=True, exist_ok=True)
    # the joiner's actives are read by Faust's recovery (not in bulk), as a worker that
    # was only briefly away does: the flow is on while its standbys start
    first, joiner = (WorkerProcess(ROOT, counts_env(
        kafka_bootstrap, app_id, topic, tmp_path / name, TOPIC_PARTITIONS=str(PARTITIONS),
        TABLE_STANDBY_REPLICAS="1", BROKER_SESSION_TIMEOUT_S=str(SESSION_TIMEOUT_S),
        TABLE_BULK_RESTORE_MIN_RECORDS=str(10 * keys),
    ), log_path=log_dir / f"worker-{name}.log") for name in ("a", "b"))
    with first:
        wait_for(lambda: sources(first, topic) == set(range(PARTITIONS)), DEADLINE,
                 "the first worker to own every partition")
        expected = asyncio.run(produce_updates(kafka_bootstrap, topic, PARTITIONS, keys,
                                               keys, app_id))
        wait_for(lambda: asyncio.run(committed_lag(kafka_bootstrap, app_id, topic)) == 0,
                 DEADLINE, "every update processed and committed", interval=1)
        ends = changelog_ends(kafka_bootstrap, app_id)
        with joiner:
            def split() -> set[int] | None:
                owned = [sources(w, topic) for w in (first, joiner)]
                if all(owned) and not owned[0] & owned[1]:  # type: ignore[operator]
                    return owned[0]
                return None

            standby = wait_for(split, DEADLINE, "the joiner to take its share")

            def standby_caught_up() -> bool:
                return metric(joiner, "streams_table_recovery_remaining_records",
                              kind="standby") == 0 and all(
                    metric(joiner, "streams_table_recovery_records_total", table=TABLE,
                           partition=str(p)) > 0 for p in standby)

            wait_for(standby_caught_up, 60, "the joiner's standbys to reach the end")
            first.kill()
            wait_for(lambda: sources(joiner, topic) == set(range(PARTITIONS)),
                     SESSION_TIMEOUT_S + 30, "the joiner to own every partition",
                     interval=0.2)
            with ThreadPoolExecutor(4) as pool:
                values = dict(zip(expected, pool.map(lambda k: value_of(joiner, k),
                                                      expected), strict=True))
    missing = {k for k, v in values.items() if v != expected[k]}
    by_partition = {p: sum(1 for k in missing if key_partition(k.encode(), PARTITIONS) == p)
                    for p in range(PARTITIONS)}
    assert not missing, (f"{len(missing)} of {keys} keys wrong or missing after the "
                         f"failover, by partition {by_partition} (changelog ends {ends}, "
                         f"standby partitions {sorted(standby)})")
