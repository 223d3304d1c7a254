"""Start-up and footprint: broker start time, 10,000 orders end to end, peak memory.

The broker start is timed twice in the same run (cold JVM caches vs warm) and the
end-to-end throughput is reported next to the raw produce rate of the same run.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from streams.testing import (
    WorkerProcess,
    committed_lag,
    produce_orders,
    table_matches,
    wait_for,
)
from tests.support.kafka_local import LocalKafka

ROOT = Path(__file__).resolve().parent.parent
ORDERS = 10_000


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident set size so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(bootstrap_servers: str | None = None) -> dict[str, Any]:
    """Starts brokers of its own (their start-up is measured); `bootstrap_servers` unused."""
    starts = []
    for _ in range(2):
        began = time.monotonic()
        with LocalKafka():
            starts.append(time.monotonic() - began)
    with LocalKafka() as kafka, tempfile.TemporaryDirectory() as data_dir:
        broker_pid = kafka._nodes[0].process.pid  # type: ignore[union-attr]
        app_id = f"bench-{random.randrange(1 << 30):x}"
        worker = WorkerProcess(ROOT, {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                                      "APP_ID": app_id, "DATA_DIR": data_dir,
                                      "LOG_LEVEL": "WARNING"})
        with worker:
            began = time.monotonic()
            worker.wait_ready()
            worker_ready = time.monotonic() - began
            began = time.monotonic()
            expected = asyncio.run(produce_orders(kafka.bootstrap_servers, app_id, ORDERS))
            produced = time.monotonic() - began
            wait_for(lambda: asyncio.run(committed_lag(
                kafka.bootstrap_servers, app_id, "orders")) == 0, 300, "all orders committed",
                interval=0.1)
            end_to_end = time.monotonic() - began
            if not table_matches(worker, "customer_totals", expected):
                raise AssertionError("the table does not match what was produced")
            assert worker.process is not None
            result = {
                "broker_start_s": starts,
                "worker_ready_s": worker_ready,
                "produce_msgs_per_s": ORDERS / produced,
                "end_to_end_msgs_per_s": ORDERS / end_to_end,
                "broker_peak_rss_mib": peak_rss_mib(broker_pid),
                "worker_peak_rss_mib": peak_rss_mib(worker.process.pid),
            }
    print("foundation")
    print(f"  broker start (cold, warm)    {starts[0]:.1f} s, {starts[1]:.1f} s")
    print(f"  worker ready                 {result['worker_ready_s']:.1f} s")
    print(f"  10,000 orders produced       {result['produce_msgs_per_s']:,.0f} msg/s")
    print(f"  10,000 orders end to end     {result['end_to_end_msgs_per_s']:,.0f} msg/s "
          f"({result['end_to_end_msgs_per_s'] / result['produce_msgs_per_s']:.2f}x produce)")
    print(f"  peak RSS broker / worker     {result['broker_peak_rss_mib']:.0f} MiB / "
          f"{result['worker_peak_rss_mib']:.0f} MiB")
    return result
