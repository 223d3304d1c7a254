"""Losing one broker of three (RF 3, min.insync.replicas 2, acks=all) while records flow:
the workers keep processing, and no acknowledged record is lost once it is back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.testing import wait_for
from tests.support.harness import Harness
from tests.support.kafka_local import LocalKafka

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def lose_a_broker(cluster: LocalKafka, name: str, workdir: Path, *, records: int,
                  rate: float, crash: bool) -> None:
    with Harness(ROOT, cluster.bootstrap_servers, name, workdir, replication=3) as h:
        h.start_workers(3)
        h.wait_settled([1, 2, 3])
        h.feed(records, rate)
        wait_for(lambda: sum(h.offsets()[0].values()) > 0, 60, "the first offsets committed")

        down_at = time.monotonic()
        if crash:
            cluster.kill_broker(2)
        else:
            cluster.stop_broker(2)
        committed, _ = h.offsets()
        stalled = h.wait_processing(committed, timeout=120, started=down_at)
        assert h.feeding, "records were still flowing while the broker was down"
        # keep it down long enough for leaders to move and clients to notice
        time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
        cluster.start_broker(2)

        h.wait_feed_done()
        h.wait_caught_up()
        report = h.check()
        print(f"\nbroker loss ({'kill -9' if crash else 'stop'}): every partition processing "
              f"{stalled:.1f}s after the loss; {report.summary()}, "
              f"{h.feeder.failed} sends not acknowledged")
    assert report.acknowledged > 0
    assert report.lost_total == 0
    assert report.problems("at_least_once") == []


def test_one_broker_stopped_and_back_loses_no_acknowledged_record(
        kafka_cluster: LocalKafka, unique_name: str, output_dir: Path) -> None:
    lose_a_broker(kafka_cluster, unique_name, output_dir, records=15_000, rate=700,
                  crash=False)


@pytest.mark.chaos
def test_one_broker_killed_and_back_full(
        kafka_cluster: LocalKafka, unique_name: str, output_dir: Path) -> None:
    lose_a_broker(kafka_cluster, unique_name, output_dir, records=100_000, rate=1_500,
                  crash=True)
