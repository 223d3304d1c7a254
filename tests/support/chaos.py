"""The kill -9 scenario on a `Harness`, and what it measured.

`run_kill_cycles` feeds records while it repeatedly kills a random worker with SIGKILL,
waits until every partition is processing again, restarts the worker and waits until the
group has it back. For each cycle it records:

- `kill_recovery_s`: from the kill until every partition has one owner among the live
  workers and its committed offset moved past where it was at the kill (Kafka notices a
  killed member only after the session timeout, so this is at least that);
- `join_s`: from starting the worker process until the group is settled with it as an
  owner and every partition's committed offset moved past where it was at the start;
- `uncommitted_at_kill`: the killed worker's partitions' log end minus committed offset;
- `processed_uncommitted`: how many of those the killed worker had processed (the sink
  has them), i.e. the batches it had in flight or done since its last commit;
- `duplicates`: records processed again because of the kill (see `KillWindow`); at most
  `processed_uncommitted`.

Duplicates outside the kill windows are counted apart: Faust forgets uncommitted
acknowledgements at every rebalance (see `RebalanceWindow`), so a join or a leave also
brings back up to a commit interval of work. Any other duplicate is a bug.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.support.checker import CheckReport
from tests.support.harness import Harness

log = logging.getLogger(__name__)


@dataclass
class KillCycle:
    worker: int
    kill_recovery_s: float
    join_s: float
    uncommitted_at_kill: int
    processed_uncommitted: int = 0
    duplicates: int = 0


@dataclass
class ChaosReport:
    guarantee: str
    records: int
    cycles: list[KillCycle] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)
    duplicates_from_rebalances: int = 0
    duplicates_unexplained: int = 0
    unexplained_duplicates: dict[str, int] = field(default_factory=dict)
    unexplained_examples: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        recoveries = [c.kill_recovery_s for c in self.cycles]
        joins = [c.join_s for c in self.cycles]
        data["kill_recovery_s"] = _stats(recoveries)
        data["join_s"] = _stats(joins)
        data["duplicates_per_kill"] = [c.duplicates for c in self.cycles]
        return data

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        data = self.as_dict()
        out = [f"chaos ({self.guarantee}): {self.records} records, {len(self.cycles)} kills "
               f"in {self.seconds:.0f}s",
               f"  check: {self.check}"]
        for n, cycle in enumerate(self.cycles, 1):
            out.append(f"  kill {n}: worker {cycle.worker}, processing again after "
                       f"{cycle.kill_recovery_s:.1f}s, rejoined in {cycle.join_s:.1f}s, "
                       f"{cycle.duplicates} duplicates ({cycle.processed_uncommitted} "
                       f"processed but uncommitted, {cycle.uncommitted_at_kill} uncommitted "
                       "at the kill)")
        out.append(f"  kill -> processing again: {data['kill_recovery_s']}")
        out.append(f"  join -> processing: {data['join_s']}")
        out.append(f"  duplicates of work done but not committed before other rebalances: "
                   f"{self.duplicates_from_rebalances}")
        out.append(f"  duplicates nothing explains: {self.duplicates_unexplained}")
        if self.unexplained_duplicates:
            out.append(f"    by worker@generation: {self.unexplained_duplicates}")
            out.append(f"    e.g. {'; '.join(self.unexplained_examples)}")
        out.append(f"  problems: {self.problems or 'none'}")
        return out


def run_kill_cycles(h: Harness, *, records: int, rate: float, kills: int,
                    interval_s: float = 10.0, workers: int = 3, seed: int = 1,
                    ) -> tuple[ChaosReport, CheckReport]:
    """Start `workers`, feed `records` at `rate`/s, kill and restart a random worker
    `kills` times (at least `interval_s` apart), then wait for the group to catch up and
    check the sink."""
    rng = random.Random(seed)
    report = ChaosReport(guarantee=h.guarantee, records=records)
    started = time.monotonic()
    h.start_workers(workers)
    h.wait_settled(range(1, workers + 1))
    h.feed(records, rate)
    next_kill = time.monotonic() + interval_s
    for _ in range(kills):
        time.sleep(max(0.0, next_kill - time.monotonic()))
        next_kill = time.monotonic() + interval_s
        victim = rng.choice(h.live())
        window = h.kill_worker(victim)
        recovery = h.wait_processing(window.committed, started=window.at)
        joined_at = time.monotonic()
        committed, _ = h.offsets()
        h.restart_worker(victim, wait_ready=False)
        h.wait_settled(h.live(), timeout=180)
        h.wait_processing(committed)
        join = time.monotonic() - joined_at
        report.cycles.append(KillCycle(
            worker=victim, kill_recovery_s=round(recovery, 2), join_s=round(join, 2),
            uncommitted_at_kill=sum(high - low for low, high in window.ranges.values())))
        log.info("kill of worker %d: processing again after %.1fs, rejoined in %.1fs",
                 victim, recovery, join)
    h.wait_feed_done()
    h.wait_caught_up(600)
    check = h.check()
    sources = h.classify_duplicates(check)
    in_flight = h.processed_uncommitted(check)
    for cycle, duplicates, processed in zip(report.cycles, sources.per_kill, in_flight,
                                            strict=True):
        cycle.duplicates = duplicates
        cycle.processed_uncommitted = processed
    report.duplicates_from_rebalances = sources.rebalance
    report.duplicates_unexplained = sources.unexplained
    report.unexplained_duplicates = dict(sources.groups)
    report.unexplained_examples = sources.examples
    report.check = check.summary()
    report.problems = check.problems(h.guarantee)
    report.seconds = round(time.monotonic() - started, 1)
    return report, check


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}
