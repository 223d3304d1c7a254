"""Bulk restore: active RocksDB table partitions rebuilt from their changelogs in batches.

Faust restores a table partition one changelog record at a time: each record becomes a
Faust event on the recovery queue, waits in a per-table buffer and reaches RocksDB in a
batch of 1,000, about 20,000 records/s. After a lost disk, a 10M-key table takes
minutes to come back.

`BulkRestore` runs before Faust's recovery of each new assignment
(`streams._faust.recovery.RestoreFirstRecovery`, outside the rebalance callback). For the
active changelog partitions of RocksDB tables with more than `threshold` records left, it
reads with a consumer of its own (assigned, not in the group, the worker's client
options, `read_committed` under exactly-once) and `getmany`, and writes each partition's
fetched records in one RocksDB write batch that also records the last offset it covers.
Faust then reads the persisted offsets at the changelog's end and has nothing left to
read, or only what was written meanwhile. Standby partitions and smaller tails keep
Faust's path.

Progress is Faust's: the restore keeps `active_highwaters`/`active_offsets` of the
recovery service up to date, so `/ready` ("records left"), the remaining-records metric
and the progress log lines read it as they read Faust's own recovery; the records
applied are counted through `on_applied` (streams/state/recovery.py).

The restore works in steps of `RECORDS_PER_STEP` records and lets the event loop run
between them, so the worker's HTTP server and timers keep answering.

A rebalance or shutdown cancels the restore between two write batches; a killed worker
restarts from the last batch written, whose offset is on disk with its records.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import monotonic
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables.recovery import Recovery
from faust.types import TP

from streams._faust.recovery import use_restore_step
from streams._faust.store import is_rocksdb, write_changelog_batch
from streams._faust.tables import has_own_changelog_callback
from streams.kafka.client_options import client_options

log = logging.getLogger(__name__)

#: fewer records left than this (over all partitions) are read by Faust's recovery
DEFAULT_THRESHOLD = 1_000
FETCH_WAIT_MS = 500
FETCH_WAIT_AT_END_MS = 50
PARTITION_FETCH_BYTES = 8 * 1024 * 1024
#: records parsed and written per step; the event loop runs between steps (a step of
#: 10,000 records takes tens of milliseconds, a whole fetch of 3 x 8 MiB seconds)
RECORDS_PER_STEP = 10_000

AppliedCallback = Callable[[TP, int], None]


@dataclass
class _Partition:
    """One changelog partition to restore."""

    tp: TP
    kafka_tp: TopicPartition
    store: Any
    table: str
    end: int  # the offset after the last record to restore
    last: int  # the last offset applied and persisted (start - 1)


class BulkRestore:
    """The restore step (see the module docstring)."""

    def __init__(self, app: Any, *, threshold: int = DEFAULT_THRESHOLD) -> None:
        self.app = app
        self.threshold = threshold
        self.on_applied: list[AppliedCallback] = []

    async def __call__(self, recovery: Recovery, actives: set[TP]) -> Mapping[TP, int]:
        """Restore `actives` (see the class); the end offsets of the partitions now
        restored to their end, or nothing when Faust's recovery reads what is left."""
        stores = self._stores(actives)
        if not stores:
            return {}
        reader = self._reader(len(stores))
        await reader.start()
        try:
            partitions = await self._partitions(reader, stores)
            left = sum(p.end - 1 - p.last for p in partitions)
            if 0 < left < self.threshold:
                return {}
            behind = [p for p in partitions if p.end - 1 > p.last]
            if behind:
                await self._restore(recovery, reader, behind)
        finally:
            await reader.stop()
        # A persisted offset past the end is left to Faust's consistency check.
        return {p.tp: p.end for p in partitions if p.last < p.end}

    def _stores(self, actives: set[TP]) -> dict[TP, tuple[str, Any]]:
        """(table name, store) of the active changelog partitions this step restores."""
        stores: dict[TP, tuple[str, Any]] = {}
        for name, table in self.app.tables.items():
            if not is_rocksdb(table.data) or table.is_global \
                    or has_own_changelog_callback(table):
                continue
            topic = table.changelog_topic.get_topic_name()
            stores.update({tp: (name, table.data) for tp in actives if tp.topic == topic})
        return stores

    def _reader(self, partitions: int) -> AIOKafkaConsumer:
        settings = self.app.platform_settings
        return AIOKafkaConsumer(
            **client_options(settings, client_id=f"{self.app.conf.id}-restore"),
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level=("read_committed" if settings.processing_guarantee
                             == "exactly_once" else "read_uncommitted"),
            # a fetch waiting at a partition's end holds up the end-offset requests
            fetch_max_wait_ms=FETCH_WAIT_AT_END_MS,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            fetch_max_bytes=PARTITION_FETCH_BYTES * partitions,
        )

    async def _partitions(self, reader: AIOKafkaConsumer,
                          stores: dict[TP, tuple[str, Any]]) -> list[_Partition]:
        """Where each partition's restore starts (its persisted offset, or the changelog's
        earliest offset after compaction or retention) and ends."""
        kafka_tps = {tp: TopicPartition(tp.topic, tp.partition) for tp in stores}
        ends = await reader.end_offsets(list(kafka_tps.values()))
        earliest = await reader.beginning_offsets(list(kafka_tps.values()))
        partitions = []
        for tp, (name, store) in sorted(stores.items()):
            ktp = kafka_tps[tp]
            persisted = store.persisted_offset(tp)
            last = max(-1 if persisted is None else persisted, earliest[ktp] - 1)
            partitions.append(_Partition(tp, ktp, store, name, ends[ktp], last))
        return partitions

    async def _restore(self, recovery: Recovery, reader: AIOKafkaConsumer,
                       partitions: list[_Partition]) -> None:
        recovery.in_recovery = self.app.in_recovery = True
        for p in partitions:
            recovery.active_highwaters[p.tp] = p.end - 1
            recovery.active_offsets[p.tp] = p.last
        began = monotonic()
        by_kafka_tp = {p.kafka_tp: p for p in partitions}
        reader.assign(list(by_kafka_tp))
        for ktp, p in by_kafka_tp.items():
            reader.seek(ktp, p.last + 1)
        applied: Counter[TP] = Counter()
        reading = set(by_kafka_tp)
        while reading:
            await self._read_to_ends(reader, recovery, by_kafka_tp, reading, applied)
            # Records written meanwhile (by a previous owner still finishing) are read
            # too, so that the ends handed to Faust are current.
            ends = await reader.end_offsets(list(by_kafka_tp))
            for ktp, p in by_kafka_tp.items():
                if ends[ktp] > p.end:
                    p.end = ends[ktp]
                    recovery.active_highwaters[p.tp] = p.end - 1
                    reading.add(ktp)
                    reader.resume(ktp)
        seconds = max(monotonic() - began, 1e-6)
        for table in sorted({p.table for p in partitions}):
            done = sum(applied[p.tp] for p in partitions if p.table == table)
            log.info("table %s: %s changelog records restored in bulk in %.1fs (%s records/s)",
                     table, f"{done:,}", seconds, f"{done / seconds:,.0f}")

    async def _read_to_ends(self, reader: AIOKafkaConsumer, recovery: Recovery,
                            partitions: Mapping[TopicPartition, _Partition],
                            reading: set[TopicPartition], applied: Counter[TP]) -> None:
        """Fetch and write until every partition in `reading` is read to its end."""
        while reading:
            fetched = await reader.getmany(*reading, timeout_ms=FETCH_WAIT_MS,
                                           max_records=RECORDS_PER_STEP)
            for ktp, records in fetched.items():
                if not records:
                    continue
                p = partitions[ktp]
                p.last = records[-1].offset
                write_changelog_batch(p.store, ktp.partition, records, p.last)
                recovery.active_offsets[p.tp] = p.last
                applied[p.tp] += len(records)
                self._count(p.tp, len(records))
            await asyncio.sleep(0)  # /ready, /metrics and the heartbeat answer meanwhile
            for ktp in list(reading):
                p = partitions[ktp]
                if await reader.position(ktp) >= p.end:
                    if p.last < p.end - 1:
                        # The records left were transaction markers or aborted.
                        write_changelog_batch(p.store, ktp.partition, (), p.end - 1)
                        p.last = recovery.active_offsets[p.tp] = p.end - 1
                    reader.pause(ktp)
                    reading.discard(ktp)

    def _count(self, tp: TP, records: int) -> None:
        for callback in self.on_applied:
            callback(tp, records)


def install_bulk_restore(app: Any, *, threshold: int = DEFAULT_THRESHOLD) -> BulkRestore | None:
    """Restore the app's active RocksDB table partitions in bulk before Faust's recovery;
    None when the app's table manager cannot run a restore step."""
    restore = BulkRestore(app, threshold=threshold)
    return restore if use_restore_step(app, restore) else None


def bulk_restore_of(app: Any) -> BulkRestore | None:
    """The app's bulk restore, if installed."""
    step = getattr(app.tables.recovery, "restore", None)
    return step if isinstance(step, BulkRestore) else None
