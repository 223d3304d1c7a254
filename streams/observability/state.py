"""The worker's own state as metrics: assigned partitions, table keys, table recovery.

Read from Faust's objects (`app.assignor`, `app.tables` and its `recovery`) on a short
interval; none of it needs the network. Counting a table's keys scans its RocksDB
partitions, so that runs on a longer interval and never during a rebalance.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from time import monotonic
from typing import Any

from faust.sensors import Sensor
from mode import Service

from streams.observability.metrics import (
    PARTITIONS_ASSIGNED,
    TABLE_KEYS,
    TABLE_KEYS_UPDATED,
    TABLE_RECOVERING,
    TABLE_RECOVERY_REMAINING,
    replace_samples,
)

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0
DEFAULT_KEYS_INTERVAL = 10.0


def partition_counts(actives: Any, standbys: Any) -> dict[tuple[str, str], int]:
    """Assigned partitions per (topic, role)."""
    counts: Counter[tuple[str, str]] = Counter()
    for tp in actives:
        counts[(tp.topic, "active")] += 1
    for tp in standbys:
        counts[(tp.topic, "standby")] += 1
    return dict(counts)


def recovery_remaining(app: Any) -> dict[tuple[str, str], int]:
    """Changelog records left to read per (table, kind), every table and kind present."""
    recovery = app.tables.recovery
    by_topic = {table.changelog_topic.get_topic_name(): name
                for name, table in app.tables.items()}
    remaining = {(name, kind): 0 for name in by_topic.values() for kind in ("active", "standby")}
    for kind, counts in (("active", recovery.active_remaining()),
                         ("standby", recovery.standby_remaining())):
        for tp, count in counts.items():
            name = by_topic.get(tp.topic)
            if name is not None:
                remaining[(name, kind)] += max(count, 0)
    return remaining


def refresh_partitions(app: Any) -> None:
    counts = partition_counts(app.assignor.assigned_actives(), app.assignor.assigned_standbys())
    replace_samples(PARTITIONS_ASSIGNED, counts)


def refresh_recovery(app: Any) -> None:
    replace_samples(TABLE_RECOVERY_REMAINING, recovery_remaining(app))
    TABLE_RECOVERING.set(1 if app.tables.recovery.in_recovery else 0)


def refresh_table_keys(app: Any) -> None:
    """Key count of every table in the partitions this worker serves (a full scan)."""
    for name, table in list(app.tables.items()):
        try:
            count = len(table)
        except Exception as exc:  # a partition closed under us: count again next time
            log.debug("could not count keys of table %s: %r", name, exc)
            continue
        TABLE_KEYS.labels(name).set(count)
    TABLE_KEYS_UPDATED.set(time.time())


class WorkerStateWatch(Sensor):
    """Refreshes the state metrics while the app runs (a sensor for its life cycle)."""

    def __init__(self, app: Any, *, interval: float = DEFAULT_INTERVAL,
                 keys_interval: float = DEFAULT_KEYS_INTERVAL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.interval = interval
        self.keys_interval = keys_interval

    @Service.task
    async def _watch(self) -> None:
        keys_counted_at = float("-inf")
        failed = False
        while not self.should_stop:
            try:
                self.refresh()
                settled = not (self.app.rebalancing or self.app.tables.recovery.in_recovery)
                if settled and monotonic() - keys_counted_at >= self.keys_interval:
                    refresh_table_keys(self.app)
                    keys_counted_at = monotonic()
            except Exception:
                # Metrics must never stop the worker; say so once, not every second.
                log.log(logging.DEBUG if failed else logging.WARNING,
                        "refreshing worker state metrics failed", exc_info=True)
                failed = True
            await self.sleep(self.interval)

    def refresh(self) -> None:
        """Partitions and recovery progress (cheap: in-memory state only)."""
        refresh_partitions(self.app)
        refresh_recovery(self.app)
