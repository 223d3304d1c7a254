"""A database outage on a real broker: the batch waits, nothing is dead-lettered."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from streams.testing import wait_for
from tests.integration.test_batch_agents import (
    caught_up,
    committed,
    item,
    items_worker,
    produce,
    read_all,
    sink_ids,
)

pytestmark = pytest.mark.integration


def metric(text: str, name: str) -> float:
    """The sum of a metric's series in a /metrics page."""
    return sum(float(value) for value in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M))


def test_an_outage_waits_and_every_record_is_processed_once_after_it(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    down = tmp_path / "down"
    total = 300
    with items_worker(kafka_bootstrap, topic, tmp_path, output_dir, TEST_BATCH_SIZE="50",
                      TEST_DOWN_FILE=str(down)) as worker:
        worker.wait_ready()
        down.touch()  # the database goes down
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(total)]))

        def waiting() -> dict[str, Any] | None:
            status, body = worker.request("/ready")
            waits = body.get("transient_waits", [])
            # a few seconds of outage: many times the 3 retries of ~0.1 s that used to
            # dead-letter the whole topic with RETRY_BACKOFF_MS=10
            return body if status == 503 and waits and waits[0]["waited_s"] >= 5 else None

        ready = wait_for(waiting, 60, "/ready to report the wait")
        wait = ready["transient_waits"][0]
        assert wait["agent"] == "tests.deployments.items.handle_items"
        assert wait["error"] == "RetryableError: database down"
        assert wait["partitions"] and all(p.startswith(f"{topic}[") for p in wait["partitions"])
        assert wait["since"].endswith("+00:00") and wait["retries"] >= 5
        assert any("waits on a transient failure" in r and "database down" in r
                   for r in ready["reasons"])
        page = worker.request_text("/metrics")
        assert metric(page, "streams_consumer_transient_retries_total") >= 5
        assert metric(page, "streams_consumer_transient_waiting") == 1
        assert metric(page, "streams_consumer_retries_total") == 0
        assert asyncio.run(read_all(kafka_bootstrap, f"{topic}.dlq")) == []
        assert sum(sink_ids(kafka_bootstrap, topic).values()) == 0
        assert sum(asyncio.run(committed(kafka_bootstrap, f"app-{topic}", topic)).values()) == 0

        down.unlink()  # the database is back
        wait_for(lambda: caught_up(kafka_bootstrap, topic), 120, "every record committed")
        processed = sink_ids(kafka_bootstrap, topic)
        assert set(processed) == set(range(total))
        assert max(processed.values()) == 1, "a record was handled twice"
        assert asyncio.run(read_all(kafka_bootstrap, f"{topic}.dlq")) == []
        assert "transient_waits" not in worker.wait_ready(30)
        assert metric(worker.request_text("/metrics"), "streams_consumer_transient_waiting") == 0


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_sigterm_during_an_outage_stops_without_committing_or_dead_lettering(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path,
        guarantee: str) -> None:
    topic = unique_name
    down = tmp_path / "down"
    down.touch()
    # the abandoned batch is let go at once: the stop does not wait out the timeout
    with items_worker(kafka_bootstrap, topic, tmp_path, output_dir, TEST_DOWN_FILE=str(down),
                      SHUTDOWN_TIMEOUT_S="300", PROCESSING_GUARANTEE=guarantee) as worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(100)]))
        wait_for(lambda: worker.request("/ready")[1].get("transient_waits"), 60,
                 "the batch to wait on the outage")
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(30) == 0
    log = worker.log_path.read_text(errors="replace")  # type: ignore[union-attr]
    assert "left unacknowledged while waiting on a transient failure" in log
    assert "did not finish within" not in log
    assert sum(asyncio.run(committed(kafka_bootstrap, f"app-{topic}", topic)).values()) == 0
    assert asyncio.run(read_all(kafka_bootstrap, f"{topic}.dlq")) == []

    down.unlink()
    with items_worker(kafka_bootstrap, topic, tmp_path, output_dir) as restarted:
        restarted.wait_ready()
        wait_for(lambda: caught_up(kafka_bootstrap, topic), 120, "every record committed")
    processed = sink_ids(kafka_bootstrap, topic)
    assert set(processed) == set(range(100)) and max(processed.values()) == 1


def test_a_rebalance_during_an_outage_hands_the_waiting_partitions_over_unprocessed(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    down = tmp_path / "down"
    down.touch()
    # far above the waits below: the rebalance must not wait for the abandoned batch
    env = {"TEST_DOWN_FILE": str(down), "SHUTDOWN_TIMEOUT_S": "300"}
    (output_dir / "second").mkdir(exist_ok=True)
    with items_worker(kafka_bootstrap, topic, tmp_path, output_dir, **env) as first:
        first.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(300)]))
        wait_for(lambda: first.request("/ready")[1].get("transient_waits"), 60,
                 "the batch to wait on the outage")
        with items_worker(kafka_bootstrap, topic, tmp_path, output_dir / "second",
                          DATA_DIR=str(tmp_path / "second"), **env) as second:
            log = first.log_path
            assert log is not None
            wait_for(lambda: "left unacknowledged while waiting on a transient failure"
                     in log.read_text(errors="replace"), 60, "the first worker to let go")

            def second_waits() -> bool:
                waits = second.request("/ready")[1].get("transient_waits") or []
                return bool(waits and waits[0]["partitions"])

            wait_for(second_waits, 90, "the new owner to wait on the outage too")
            assert "did not finish within" not in log.read_text(errors="replace")
            assert asyncio.run(read_all(kafka_bootstrap, f"{topic}.dlq")) == []
            down.unlink()
            wait_for(lambda: caught_up(kafka_bootstrap, topic), 120, "every record committed")
    processed = sink_ids(kafka_bootstrap, topic)
    assert set(processed) == set(range(300))
    assert max(processed.values()) == 1, "a record was handled twice"
    assert asyncio.run(read_all(kafka_bootstrap, f"{topic}.dlq")) == []
