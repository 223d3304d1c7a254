"""The harness's checker: what it calls lost, duplicated, out of order and a table mismatch,
and which of those break which guarantee."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.testing import WorkerProcess
from tests.support.checker import Fed, KillWindow, RebalanceWindow, analyse
from tests.support.harness import Harness


def sink(*records: tuple[int, str, int], owned: bool = True) -> list[dict[str, Any]]:
    return [{"id": i, "key": key, "seq": seq, "partition": 0, "offset": i, "worker": "w",
             "owned": owned} for i, key, seq in records]


FED = [Fed(0, "a", 0), Fed(1, "a", 1), Fed(2, "b", 0), Fed(3, "a", 2)]


def test_everything_once_in_order_is_clean_for_both_guarantees() -> None:
    report = analyse(FED, sink((0, "a", 0), (1, "a", 1), (2, "b", 0), (3, "a", 2)),
                     {"a": 3, "b": 1})
    assert report.summary()["lost"] == 0
    assert report.problems("at_least_once") == []
    assert report.problems("exactly_once") == []


def test_a_missing_record_is_lost_under_any_guarantee() -> None:
    report = analyse(FED, sink((0, "a", 0), (2, "b", 0), (3, "a", 2)))
    assert report.lost == {"a": [1]}
    assert report.problems("at_least_once")
    assert report.problems("exactly_once")


def test_a_replayed_record_is_a_duplicate_not_an_ordering_fault() -> None:
    report = analyse(FED, sink((0, "a", 0), (1, "a", 1), (0, "a", 0), (1, "a", 1),
                               (2, "b", 0), (3, "a", 2)), {"a": 5, "b": 1})
    assert report.duplicates == {"a": 2}
    assert report.out_of_order == {}
    assert report.duplicate_offsets == [(0, 0), (0, 1)]
    # at-least-once allows the duplicates and the table counting them
    assert report.problems("at_least_once") == []
    assert len(report.problems("exactly_once")) == 2


def test_a_later_sequence_number_first_is_out_of_order() -> None:
    report = analyse(FED, sink((1, "a", 1), (0, "a", 0), (2, "b", 0), (3, "a", 2)))
    assert report.out_of_order == {"a": 1}
    assert report.problems("at_least_once")


def test_a_table_count_below_the_distinct_records_is_always_a_problem() -> None:
    report = analyse(FED, sink((0, "a", 0), (1, "a", 1), (2, "b", 0), (3, "a", 2)),
                     {"a": 2, "b": 1})
    assert report.table_mismatches == {"a": (2, 3)}
    assert report.problems("at_least_once")


def test_work_finished_after_a_revoke_breaks_only_exactly_once() -> None:
    report = analyse(FED[:1], sink((0, "a", 0), owned=False))
    assert report.not_owned == 1
    assert report.problems("at_least_once") == []
    assert report.problems("exactly_once")


def test_windows_cover_offsets_from_committed_to_the_end() -> None:
    kill = KillWindow(1, "w1", 0.0, 0.0, {2: (10, 20)}, {2: 10})
    assert kill.covers(2, 10) and kill.covers(2, 19)
    assert not kill.covers(2, 20) and not kill.covers(1, 15)
    rebalance = RebalanceWindow("start w4", {0: 5, 1: 7})
    assert rebalance.covers(1, 1_000_000)  # not settled yet: open ended
    rebalance.ends = {0: 9, 1: 9}
    assert rebalance.covers(0, 5) and not rebalance.covers(0, 9) and not rebalance.covers(1, 6)


def test_duplicates_are_blamed_on_the_kill_that_cut_their_first_processing_off(
        tmp_path: Path) -> None:
    h = Harness(Path("."), "127.0.0.1:1", "t", tmp_path)
    try:
        h.workers[1] = WorkerProcess(Path("."), {"WEB_PORT": "1"})
        url = h.workers[1].url
        # w1 killed twice; the second window overlaps the first (lag kept growing)
        h.kills = [KillWindow(1, url, 0.0, 100.0, {0: (0, 50)}, {0: 0}),
                   KillWindow(1, url, 0.0, 200.0, {0: (10, 90)}, {0: 10})]
        h.rebalances = [RebalanceWindow("start w2", {0: 60}, {0: 80})]

        def rec(offset: int, worker: str, at: float) -> dict[str, Any]:
            return {"id": offset, "key": "a", "seq": offset, "partition": 0,
                    "offset": offset, "worker": worker, "at": at}

        report = analyse([], [
            rec(5, url, 90.0), rec(20, url, 150.0), rec(65, "other", 150.0),
            rec(95, "other", 150.0), rec(70, url, 160.0),
            rec(5, "other", 120.0),   # cut off by kill 1
            rec(20, "other", 220.0),  # processed by the restarted w1, cut off by kill 2
            rec(65, "other", 170.0),  # another worker's, inside the rebalance window
            rec(95, "other", 170.0),  # nothing explains it
            rec(70, url, 180.0),      # w1 again after the rebalance, before kill 2
            rec(70, "other", 230.0),  # and once more after kill 2
        ])
        sources = h.classify_duplicates(report)
        assert sources.per_kill == [1, 2]
        assert (sources.rebalance, sources.unexplained) == (2, 1)
        assert h.processed_uncommitted(report) == [1, 2]
    finally:
        h.close()
