"""Kill -9 cycles: workers of the group are killed and restarted while records flow.

At-least-once: nothing acknowledged is lost and every duplicate is a record the killed
worker had processed without committing. Exactly-once: nothing is lost and nothing is
repeated in the sink read with read_committed, and the table counts are exact.

The short version runs with the suite; the full one (200,000 records, 5 kills about 10 s
apart) only with `make chaos`, which also writes test-output/chaos-report.json.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chaos import ChaosReport, run_kill_cycles
from tests.support.checker import CheckReport
from tests.support.harness import Harness

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def assert_at_least_once(report: ChaosReport, check: CheckReport, records: int) -> None:
    assert check.acknowledged == records
    assert report.problems == [], report.problems
    assert check.lost_total == 0
    # Each duplicate is a record processed but not committed before a rebalance: by the
    # killed worker (its batches in flight and those done since its last commit), or by
    # any worker before a join or leave (Faust drops uncommitted acks on revoke).
    assert report.duplicates_unexplained == 0, report.lines()
    for cycle in report.cycles:
        assert cycle.duplicates <= cycle.processed_uncommitted <= cycle.uncommitted_at_kill


def test_kill_9_loses_nothing_and_duplicates_only_what_was_uncommitted(
        kafka_bootstrap: str, unique_name: str, output_dir: Path) -> None:
    records = 20_000
    with Harness(ROOT, kafka_bootstrap, unique_name, output_dir) as h:
        report, check = run_kill_cycles(h, records=records, rate=300, kills=2)
    report.write(output_dir / "chaos-report.json")
    print("\n".join(report.lines()))
    assert_at_least_once(report, check, records)


@pytest.mark.chaos
def test_chaos_full(kafka_bootstrap: str, unique_name: str, output_dir: Path) -> None:
    records = 200_000
    with Harness(ROOT, kafka_bootstrap, unique_name, output_dir) as h:
        report, check = run_kill_cycles(h, records=records, rate=1_200, kills=5,
                                        interval_s=10)
    report.write(ROOT / "test-output" / "chaos-report.json")
    print("\n".join(report.lines()))
    assert_at_least_once(report, check, records)


def assert_exactly_once(report: ChaosReport, check: CheckReport, records: int) -> None:
    assert check.acknowledged == records
    # problems(exactly_once) also counts duplicates, table mismatches and records
    # processed after their partition was revoked
    assert report.problems == [], report.lines()
    assert check.lost_total == 0
    assert check.duplicates_total == 0


def test_exactly_once_kill_9_loses_and_repeats_nothing(
        kafka_bootstrap: str, unique_name: str, output_dir: Path) -> None:
    records = 20_000
    with Harness(ROOT, kafka_bootstrap, unique_name, output_dir,
                 guarantee="exactly_once") as h:
        report, check = run_kill_cycles(h, records=records, rate=300, kills=2)
    report.write(output_dir / "chaos-report.json")
    print("\n".join(report.lines()))
    assert_exactly_once(report, check, records)


@pytest.mark.chaos
def test_chaos_full_exactly_once(kafka_bootstrap: str, unique_name: str,
                                 output_dir: Path) -> None:
    records = 200_000
    with Harness(ROOT, kafka_bootstrap, unique_name, output_dir,
                 guarantee="exactly_once") as h:
        report, check = run_kill_cycles(h, records=records, rate=1_200, kills=5,
                                        interval_s=10)
    report.write(ROOT / "test-output" / "chaos-report-exactly-once.json")
    print("\n".join(report.lines()))
    assert_exactly_once(report, check, records)
