"""The worker's own state as metrics: assigned partitions, table keys, table recovery.

Read from Faust's objects (`app.assignor`, `app.tables` and its `recovery`) on a short
interval; none of it needs the network. Counting a table's keys scans its RocksDB
partitions, so that runs on a longer interval (at least 10 s, and a hundred times as long
as the last count took), lets the event loop run as it goes, and never runs during a
rebalance.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
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
from streams.state.scan import count_keys

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0
DEFAULT_KEYS_INTERVAL = 10.0
#: The time between two key counts, at least, in multiples of the last count's.
KEYS_COUNT_SPACING = 100


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


async def refresh_table_keys(app: Any, settled: Callable[[], bool]) -> None:
    """Key count of every table in the partitions this worker serves (a full scan that
    lets the event loop run; given up when `settled()` turns false)."""
    for name, table in list(app.tables.items()):
        try:
            count = await count_keys(table, still_wanted=settled)
        except Exception as exc:  # a partition closed under us: count again next time
            log.debug("could not count keys of table %s: %r", name, exc)
            continue
        if count is None:
            return
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
        next_count = float("-inf")
        failed = False
        while not self.should_stop:
            try:
                self.refresh()
                if self._settled() and monotonic() >= next_count:
                    started = monotonic()
                    await refresh_table_keys(self.app, self._settled)
                    # a count takes time in proportion to the tables: at most a
                    # hundredth of the worker's, however large they grow
                    next_count = monotonic() + max(
                        self.keys_interval, KEYS_COUNT_SPACING * (monotonic() - started))
            except Exception:
                # Metrics must never stop the worker; say so once, not every second.
                log.log(logging.DEBUG if failed else logging.WARNING,
                        "refreshing worker state metrics failed", exc_info=True)
                failed = True
            await self.sleep(self.interval)

    def _settled(self) -> bool:
        return not (self.app.rebalancing or self.app.tables.recovery.in_recovery)

    def refresh(self) -> None:
        """Partitions and recovery progress (cheap: in-memory state only)."""
        refresh_partitions(self.app)
        refresh_recovery(self.app)
