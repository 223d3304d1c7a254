"""Consumer group rebalancing with records flowing: workers leave and join, every partition
always ends up with exactly one owner, and nothing acknowledged is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.testing import wait_for
from tests.support.harness import Harness

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_leave_and_join_keep_one_owner_per_partition_and_lose_nothing(
        kafka_bootstrap: str, unique_name: str, output_dir: Path) -> None:
    with Harness(ROOT, kafka_bootstrap, unique_name, output_dir, partitions=3) as h:
        h.start_workers(3)
        owners = h.wait_settled([1, 2, 3])
        assert sorted(o[0] for o in owners.values()) == [1, 2, 3]
        h.feed(12_000, rate=600)
        wait_for(lambda: h.offsets()[0], 60, "the first offsets committed")

        assert h.stop_worker(2) == 0
        owners = h.wait_settled([1, 3])
        assert sorted(len([p for p, o in owners.items() if o == [w]]) for w in (1, 3)) == [1, 2]
        assert h.feeding, "records were still flowing during the rebalance"

        h.start_worker(4)
        owners = h.wait_settled([1, 3, 4])
        assert sorted(o[0] for o in owners.values()) == [1, 3, 4]
        view = h.workers[4].get_json("/api/assignment")
        assert view["worker"] == h.workers[4].url
        assert view["rebalances"] >= 1 and view["generation"] > 0
        assert [tp for tp in view["assigned"] if tp["topic"] == h.topic] == [
            {"topic": h.topic, "partition": p} for p, o in owners.items() if o == [4]]
        metrics = h.workers[4].request_text("/metrics")
        partition = next(p for p, o in owners.items() if o == [4])
        assert (f'streams_partition_assigned{{partition="{partition}",topic="{h.topic}"}} 1.0'
                in metrics)

        h.wait_feed_done()
        h.wait_caught_up()
        report = h.check()
    assert report.acknowledged == 12_000
    assert report.problems("at_least_once") == []
    assert report.not_owned == 0, "a batch finished after its partition was given up"
    # a graceful leave or join finishes and commits the work in hand first
    assert report.duplicates_total == 0, report.duplicates


def test_batch_in_flight_past_the_revoke_timeout_is_processed_again_by_the_new_owner(
        kafka_bootstrap: str, unique_name: str, output_dir: Path) -> None:
    """A batch still running when its partitions are given up: Faust waits for it up to
    SHUTDOWN_TIMEOUT_S, then the partition moves on with the batch uncommitted. The new
    owner processes it again; the old worker's late result is marked as not owned and
    nothing it acknowledges afterwards is committed past the new owner's work."""
    hold, mark = output_dir / "hold", output_dir / "mark"
    hold.unlink(missing_ok=True)
    mark.unlink(missing_ok=True)
    with Harness(ROOT, kafka_bootstrap, unique_name, output_dir,
                 env={"SHUTDOWN_TIMEOUT_S": "3"}) as h:
        h.start_worker(1, env={"TRACKED_HOLD_FILE": str(hold),
                               "TRACKED_BATCH_MARK": str(mark)})
        h.wait_settled([1])
        hold.touch()
        h.feed(600, rate=5_000)
        wait_for(mark.exists, 60, "worker 1 to hold a batch")
        held = {tuple(pair) for pair in json.loads(mark.read_text())}

        h.start_worker(2)
        owners = h.wait_settled([1, 2])
        moved = {p for p, o in owners.items() if o == [2]}
        held_moved = {(p, o) for p, o in held if p in moved}

        def new_owner_did_the_held_records() -> bool:
            done = {(r["partition"], r["offset"]) for r in h.check(table_counts=False).sink
                    if r["worker"] == h.workers[2].url}
            return held_moved <= done

        wait_for(new_owner_did_the_held_records, 60, "worker 2 to process the held records")
        hold.unlink()
        h.wait_feed_done()
        h.wait_caught_up()
        report = h.check()

    late = {(r["partition"], r["offset"]) for r in report.sink if not r["owned"]}
    assert held_moved, "the rebalance moved a partition of the held batch"
    assert late == held_moved
    assert report.problems("at_least_once") == []
    # only the held batch was processed twice (its kept partitions were fetched again
    # from the committed offset too)
    assert held_moved <= set(report.duplicate_offsets) <= held
