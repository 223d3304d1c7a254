"""The harness's checker: what the sink topic says about every acknowledged record.

`analyse` compares the records the broker acknowledged to the feeder with the sink topic
of processed ids and reports, per key, lost, duplicated and out-of-order records, records
finished after their partition was revoked, and table counts that differ from the distinct
records processed. `CheckReport.problems(guarantee)` says which of those break the
guarantee. `KillWindow` and `RebalanceWindow` describe what a kill or a rebalance may
legitimately bring back under at-least-once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Guarantee = Literal["at_least_once", "exactly_once"]
TABLE = "tracked_counts"


@dataclass
class Fed:
    """One record the broker acknowledged to the feeder."""

    id: int
    key: str
    seq: int


@dataclass
class KillWindow:
    """What a killed worker may have processed without committing: per partition it owned,
    offsets from the group's committed offset to the log end at the moment of the kill."""

    worker: int
    url: str
    at: float                              # time.monotonic() of the kill
    wall: float                            # time.time() of the kill
    ranges: dict[int, tuple[int, int]]
    committed: dict[int, int]              # the group's committed offsets after the kill

    def covers(self, partition: int, offset: int) -> bool:
        low, high = self.ranges.get(partition, (0, 0))
        return low <= offset < high


@dataclass
class RebalanceWindow:
    """What a rebalance may make the group process again: on every partition, offsets from
    the group's committed offset when it was set off (a worker started, stopped or killed)
    to the log end once the group settled.

    Faust forgets the acknowledgements it has not committed yet when partitions are
    revoked (`Consumer.on_partitions_revoked` in faust/transport/consumer.py drops them
    before the app's revoke handler commits), so up to a commit interval of finished work
    is processed again after every rebalance, not only after a kill.
    """

    cause: str
    committed: dict[int, int]
    ends: dict[int, int] | None = None     # None while the group has not settled

    def covers(self, partition: int, offset: int) -> bool:
        if offset < self.committed.get(partition, 0):
            return False
        return self.ends is None or offset < self.ends.get(partition, 0)


@dataclass
class DuplicateSources:
    """Why records were processed again (see `Harness.classify_duplicates`)."""

    per_kill: list[int]
    rebalance: int = 0
    unexplained: int = 0
    groups: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """What the sink topic says about every acknowledged record, per key."""

    acknowledged: int
    sink_records: int
    distinct_processed: int
    lost: dict[str, list[int]]             # key -> sequence numbers never processed
    duplicates: dict[str, int]             # key -> extra processings
    out_of_order: dict[str, int]           # key -> first processings after a later seq
    not_owned: int                         # records finished after their partition was revoked
    table_mismatches: dict[str, tuple[int, int]]  # key -> (table count, distinct processed)
    duplicate_offsets: list[tuple[int, int]] = field(default_factory=list)
    sink: list[Mapping[str, Any]] = field(default_factory=list, repr=False)

    @property
    def lost_total(self) -> int:
        return sum(len(seqs) for seqs in self.lost.values())

    @property
    def duplicates_total(self) -> int:
        return sum(self.duplicates.values())

    @property
    def out_of_order_total(self) -> int:
        return sum(self.out_of_order.values())

    def problems(self, guarantee: Guarantee) -> list[str]:
        """Violations of `guarantee`: at-least-once allows duplicates (and table counts
        above the distinct count they caused), exactly-once allows neither."""
        found = []
        if self.lost:
            sample = {k: v[:5] for k, v in list(self.lost.items())[:5]}
            found.append(f"{self.lost_total} acknowledged records never processed: {sample}")
        if self.out_of_order:
            found.append(f"{self.out_of_order_total} records processed out of order: "
                         f"{dict(list(self.out_of_order.items())[:5])}")
        if self.not_owned and guarantee == "exactly_once":
            found.append(f"{self.not_owned} records processed after their partition was "
                         "revoked")
        for key, (count, distinct) in self.table_mismatches.items():
            if count < distinct or guarantee == "exactly_once":
                found.append(f"table {TABLE}[{key}] = {count}, {distinct} distinct "
                             "records processed")
        if self.duplicates and guarantee == "exactly_once":
            found.append(f"{self.duplicates_total} duplicate processings")
        return found

    def summary(self) -> dict[str, Any]:
        return {
            "acknowledged": self.acknowledged, "sink_records": self.sink_records,
            "distinct_processed": self.distinct_processed, "lost": self.lost_total,
            "duplicates": self.duplicates_total, "out_of_order": self.out_of_order_total,
            "processed_after_revoke": self.not_owned,
            "table_mismatches": len(self.table_mismatches),
        }


def analyse(fed: Iterable[Fed], sink: Iterable[Mapping[str, Any]],
            table_counts: Mapping[str, int] | None = None) -> CheckReport:
    """Compare acknowledged records with the sink records (in sink order per key)."""
    fed, sink = list(fed), list(sink)
    seen: dict[int, int] = Counter()
    by_key_first: dict[str, list[int]] = defaultdict(list)
    duplicates: Counter[str] = Counter()
    duplicate_offsets: list[tuple[int, int]] = []
    not_owned = records = 0
    for record in sink:
        records += 1
        seen[record["id"]] += 1
        if not record.get("owned", True):
            not_owned += 1
        if seen[record["id"]] > 1:
            duplicates[record["key"]] += 1
            duplicate_offsets.append((record["partition"], record["offset"]))
        else:
            by_key_first[record["key"]].append(record["seq"])
    lost: dict[str, list[int]] = defaultdict(list)
    for item in fed:
        if item.id not in seen:
            lost[item.key].append(item.seq)
    out_of_order = {}
    for key, seqs in by_key_first.items():
        late = sum(1 for before, after in zip(seqs, seqs[1:], strict=False) if after < before)
        if late:
            out_of_order[key] = late
    distinct_by_key = {key: len(seqs) for key, seqs in by_key_first.items()}
    mismatches = {}
    if table_counts is not None:
        for key in set(distinct_by_key) | set(table_counts):
            count, distinct = table_counts.get(key, 0), distinct_by_key.get(key, 0)
            if count != distinct:
                mismatches[key] = (count, distinct)
    return CheckReport(
        acknowledged=len(fed), sink_records=records, distinct_processed=len(seen),
        lost=dict(lost), duplicates=dict(duplicates), out_of_order=out_of_order,
        not_owned=not_owned, table_mismatches=mismatches, duplicate_offsets=duplicate_offsets,
        sink=sink)
