"""Table recovery progress: what a worker restoring its tables logs and exports.

A worker rebuilds a table partition from its changelog topic whenever its local copy is
missing or behind: after losing its data directory, when a partition moves to it, or
when a standby replica takes over from a worker that died. Faust's `Recovery` service
(`app.tables.recovery`) does the work and keeps, per changelog partition, the highwater
and the offset read so far; on its own it logs remaining offsets only after 1,000 timing
samples and says nothing about standbys.

`RecoveryProgress` (a Faust sensor, added by `install_monitoring`) adds:

- a count of the changelog records applied to each table partition, as `active`
  (restoring a partition this worker serves) or `standby` (keeping a replica warm), taken
  from the tables' changelog-event callback and from the bulk restore
  (streams/state/restore.py), which writes active partitions without Faust events;
- every second: `streams_table_recovery_remaining_records`,
  `streams_table_recovery_records_total` and `streams_tables_recovered`;
- while active partitions are restored, one log line per table every `log_interval`
  seconds (records done/total per partition, records/s, records left); and at the end of
  every rebalance one line per table: records replayed (duration, rate) and the active and
  standby partitions the worker now has.

`/ready` reads the same Faust state (streams/web/probes.py `readiness_problems`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

from faust.sensors import Sensor
from faust.types import TP
from mode import Service

from streams._faust.tables import add_changelog_callback
from streams.observability.metrics import (
    TABLE_RECOVERY_RECORDS,
    TABLE_RECOVERY_REMAINING_RECORDS,
    TABLES_RECOVERED,
    replace_samples,
)
from streams.state.restore import bulk_restore_of

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0
DEFAULT_LOG_INTERVAL = 5.0


def remaining_records(app: Any) -> dict[tuple[TP, str], int]:
    """Changelog records left to read per (changelog partition, kind).

    Faust keeps the last offset read and the highwater (end offset - 1) per partition;
    either is None until the recovery round has asked the broker.
    """
    recovery = app.tables.recovery
    remaining: dict[tuple[TP, str], int] = {}
    for kind, highwaters, offsets in (
        ("active", recovery.active_highwaters, recovery.active_offsets),
        ("standby", recovery.standby_highwaters, recovery.standby_offsets),
    ):
        for tp, highwater in list(highwaters.items()):
            offset = offsets.get(tp)
            if highwater is not None and offset is not None:
                remaining[(tp, kind)] = max(highwater - offset, 0)
    return remaining


def tables_recovered(app: Any) -> bool:
    """Whether the active table partitions are up to date with their changelogs."""
    recovery = app.tables.recovery
    return recovery.completed.is_set() and not (app.in_recovery or app.rebalancing)


@dataclass
class _Restore:
    """One restore of active partitions, from a rebalance to its end."""

    started: float
    applied: Counter[TP] = field(default_factory=Counter)
    announced: bool = False
    logged_at: float = 0.0
    logged_applied: dict[str, int] = field(default_factory=dict)


class RecoveryProgress(Sensor):
    """Counts, exports and logs the progress of table recovery (see the module docstring)."""

    def __init__(self, app: Any, *, interval: float = DEFAULT_INTERVAL,
                 log_interval: float = DEFAULT_LOG_INTERVAL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.interval = interval
        self.log_interval = log_interval
        self._applied: Counter[tuple[TP, str]] = Counter()
        self._restore: _Restore | None = None

    async def on_start(self) -> None:
        for table in self.app.tables.values():
            add_changelog_callback(table, self._count_changelog_event)
        restore = bulk_restore_of(self.app)
        if restore is not None:
            restore.on_applied.append(self._count_restored)

    def _count_restored(self, tp: TP, records: int) -> None:
        self._applied[(tp, "active")] += records

    async def _count_changelog_event(self, event: Any) -> None:
        # Faust awaits this for every changelog record it reads into a table partition
        # (active or standby): only count here, the metrics are updated once a second.
        tp = event.message.tp
        kind = "active" if tp in self.app.tables.recovery.active_tps else "standby"
        self._applied[(tp, kind)] += 1

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        if self._restore is None:
            self._restore = _Restore(started=monotonic())
        return {}

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        """Faust calls this once the new assignment's active partitions are restored."""
        try:
            self.refresh()  # the last records counted still belong to this restore
            if self._restore is not None:
                self._log_restored(self._restore, monotonic())
        except Exception:
            # Called inside Faust's rebalance: an error here must not end it.
            log.warning("reporting the end of table recovery failed", exc_info=True)
        finally:
            self._restore = None

    @Service.task
    async def _watch(self) -> None:
        failed = False
        while not self.should_stop:
            try:
                self.refresh()
                self._maybe_log_progress(monotonic())
            except Exception:
                # Metrics and logs must never stop the worker; say so once.
                log.log(logging.DEBUG if failed else logging.WARNING,
                        "refreshing table recovery progress failed", exc_info=True)
                failed = True
            await self.sleep(self.interval)

    def refresh(self) -> None:
        """Move the counted records to the metrics; set remaining records and the 0/1."""
        applied, self._applied = self._applied, Counter()
        names = self._table_names()
        for (tp, kind), count in applied.items():
            if tp.topic in names:
                TABLE_RECOVERY_RECORDS.labels(names[tp.topic], str(tp.partition),
                                              kind).inc(count)
            if kind == "active" and self._restore is not None:
                self._restore.applied[tp] += count
        replace_samples(TABLE_RECOVERY_REMAINING_RECORDS, {
            (names[tp.topic], str(tp.partition), kind): left
            for (tp, kind), left in remaining_records(self.app).items() if tp.topic in names
        })
        TABLES_RECOVERED.set(1 if tables_recovered(self.app) else 0)

    def _table_names(self) -> dict[str, str]:
        """Table name by changelog topic."""
        return {table.changelog_topic.get_topic_name(): name
                for name, table in self.app.tables.items()}

    def _maybe_log_progress(self, now: float) -> None:
        restore = self._restore
        if restore is None or not self.app.in_recovery:
            return
        left = {tp: n for (tp, kind), n in remaining_records(self.app).items()
                if kind == "active"}
        if not restore.announced:
            if not any(left.values()):
                return  # highwaters not known yet
            restore.announced = True
            restore.logged_at = now
            for table, tps in self._by_table(left):
                total = sum(restore.applied[tp] + left[tp] for tp in tps)
                if total:
                    log.info("restoring table %s from its changelog: %s records in "
                             "partitions %s", table, f"{total:,}",
                             ", ".join(str(tp.partition) for tp in tps))
            return
        if now - restore.logged_at < self.log_interval:
            return
        for table, tps in self._by_table(left):
            done = sum(restore.applied[tp] for tp in tps)
            remaining = sum(left[tp] for tp in tps)
            if not done and not remaining:
                continue
            rate = (done - restore.logged_applied.get(table, 0)) / (now - restore.logged_at)
            restore.logged_applied[table] = done
            log.info(
                "restoring table %s: %s of %s records (%.0f%%) at %s records/s, %s left; "
                "partition done/total: %s",
                table, f"{done:,}", f"{done + remaining:,}",
                100 * done / max(done + remaining, 1), f"{rate:,.0f}", f"{remaining:,}",
                ", ".join(f"{tp.partition}: {restore.applied[tp]}/"
                          f"{restore.applied[tp] + left[tp]}" for tp in tps))
        restore.logged_at = now

    def _log_restored(self, restore: _Restore, now: float) -> None:
        """One line per table: what the restore replayed, and the partitions it now has."""
        recovery = self.app.tables.recovery
        seconds = max(now - restore.started, 1e-6)
        actives = dict(self._by_table({tp: 0 for tp in recovery.active_tps}))
        standbys = dict(self._by_table({tp: 0 for tp in recovery.standby_tps}))
        for table in sorted(set(actives) | set(standbys)):
            tps = actives.get(table, [])
            done = sum(restore.applied[tp] for tp in tps)
            replayed = (f"{done:,} changelog records replayed in {seconds:.2f}s "
                        f"({done / seconds:,.0f} records/s)" if done else
                        "nothing replayed from the changelog")
            log.info("table %s ready: %s; active partitions %s; standby partitions %s",
                     table, replayed,
                     ", ".join(f"{tp.partition} ({restore.applied[tp]} replayed)"
                               for tp in tps) or "none",
                     ", ".join(str(tp.partition) for tp in standbys.get(table, [])) or "none")

    def _by_table(self, per_tp: Mapping[TP, int]) -> Iterator[tuple[str, list[TP]]]:
        """(table name, its changelog partitions in order) for the partitions in `per_tp`."""
        names = self._table_names()
        grouped: defaultdict[str, list[TP]] = defaultdict(list)
        for tp in per_tp:
            if tp.topic in names:
                grouped[names[tp.topic]].append(tp)
        for table in sorted(grouped):
            yield table, sorted(grouped[table])

