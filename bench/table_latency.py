"""P3 for tables: from a record's acknowledgement by the broker to its table change being
readable over `GET /api/tables/{table}/{key}` of the worker.

The worker runs `bench.deployments.orders` with `BENCH_JOB=latest`: per key, the highest
sequence number seen, in a RocksDB `PerKeyTable` with its changelog, at the batch settings
under test. This process offers a steady load (each record `{"n": sequence}`) and stamps
each record's acknowledgement (acks=all); one record in `PROBE_EVERY` goes to one of
three probe keys (one per partition), the others to 10,000 keys as in P1. A poller reads
the probe keys over HTTP, one request at a time, at most `BENCH_POLL_HZ` requests a second,
and a probe record counts as readable at the end of the first response showing its key at
its sequence or later (the key's value only grows). The figure is thus an upper bound,
late by at most the time between two reads of the same key, which is reported as the
resolution. Both stamps come from this process's monotonic clock. As for sinks
(bench.sink_latency), the records of a second of load on either side are not measured.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from bench.foundation import peak_rss_mib
from bench.sink_latency import measured
from streams.kafka.admin import TopicSpec, ensure_topics
from streams.kafka.partitioner import key_partition
from streams.testing import WorkerProcess

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 3
KEYS = 10_000
PROBE_EVERY = 4
POLL_HZ = float(os.environ.get("BENCH_POLL_HZ", "200"))
DRAIN_S = 60.0


def probe_keys(partitions: int = PARTITIONS) -> list[str]:
    """One key per partition (murmur2, as the worker places table keys)."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        key = f"probe-{n}"
        found.setdefault(key_partition(key.encode(), partitions), key)
        n += 1
    return [found[p] for p in range(partitions)]


class Load:
    """A steady `rate` of records for `seconds`; the probe records' acknowledgement times."""

    def __init__(self, rate: int, seconds: float, probes: list[str]) -> None:
        self.rate = rate
        self.seconds, self.window = measured(rate, seconds)
        self.probes = probes
        self.sent = 0
        #: probe key -> [(sequence, acknowledged at)]
        self.acked: dict[str, list[tuple[int, float]]] = {key: [] for key in probes}
        self.done = False

    def key_of(self, sequence: int) -> str:
        if sequence % PROBE_EVERY == 0:
            return self.probes[(sequence // PROBE_EVERY) % len(self.probes)]
        return f"k{sequence % KEYS}"

    async def offer(self, bootstrap: str, topic: str) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        await producer.start()
        loop = asyncio.get_running_loop()
        pending = []
        try:
            began = loop.time()
            while (elapsed := loop.time() - began) < self.seconds:
                while self.sent < int(elapsed * self.rate) + 1:
                    self.sent += 1
                    key = self.key_of(self.sent)
                    future = await producer.send(topic, key=key.encode(),
                                                 value=json.dumps({"n": self.sent}).encode())
                    if key in self.acked:
                        future.add_done_callback(self._stamp(key, self.sent))
                    pending.append(future)
                await asyncio.sleep(0.005)
            await asyncio.gather(*pending)
        finally:
            self.done = True
            await producer.stop()

    def _stamp(self, key: str, sequence: int) -> Callable[[Any], None]:
        def stamp(_: Any) -> None:
            self.acked[key].append((sequence, time.monotonic()))
        return stamp

    def last_probe(self, key: str) -> int:
        return max((sequence for sequence, _ in self.acked[key]), default=0)


async def poll(url: str, table: str, load: Load, deadline: float,
               ) -> dict[str, list[tuple[float, int]]]:
    """Read the probe keys in turn until the load is over and every probe record is
    readable (or `deadline`, monotonic); returns per key [(response end, value)]."""
    seen: dict[str, list[tuple[float, int]]] = {key: [] for key in load.probes}
    spacing = 1 / POLL_HZ
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            for key in load.probes:
                began = time.monotonic()
                async with session.get(f"{url}/api/tables/{table}/{key}") as response:
                    body = await response.json(content_type=None)
                    value = int(body["value"]) if response.status == 200 else 0
                seen[key].append((time.monotonic(), value))
                await asyncio.sleep(max(0.0, began + spacing - time.monotonic()))
            if load.done and all(seen[k][-1][1] >= load.last_probe(k) for k in load.probes):
                break
    return seen


def latencies(load: Load, seen: dict[str, list[tuple[float, int]]]) -> tuple[list[float], int]:
    """Per probe record in the measured window, seconds from its acknowledgement to the
    first read showing it; and how many probe records were never seen."""
    found: list[float] = []
    missing = 0
    for key, acked in load.acked.items():
        reads = seen[key]
        i = 0
        for sequence, acknowledged in sorted(acked):
            while i < len(reads) and reads[i][1] < sequence:
                i += 1
            if i == len(reads):
                missing += 1
            elif sequence in load.window:
                found.append(reads[i][0] - acknowledged)
    return sorted(found), missing


def resolution_ms(seen: dict[str, list[tuple[float, int]]]) -> float:
    """Median time between two reads of the same key."""
    gaps = sorted(later[0] - earlier[0] for reads in seen.values()
                  for earlier, later in itertools.pairwise(reads))
    return gaps[len(gaps) // 2] * 1000 if gaps else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(bootstrap: str, worker: WorkerProcess, topic: str, table: str, rate: int,
                  seconds: float) -> dict[str, Any]:
    load = Load(rate, seconds, probe_keys())
    assert worker.process is not None
    cpu_before, began = cpu_seconds(worker.process.pid), time.monotonic()
    poller = asyncio.create_task(poll(worker.url, table, load,
                                      time.monotonic() + load.seconds + DRAIN_S))
    await load.offer(bootstrap, topic)
    seen = await poller
    cpu = (cpu_seconds(worker.process.pid) - cpu_before) / (time.monotonic() - began)
    found, missing = latencies(load, seen)
    if missing:
        raise AssertionError(f"{table}: {missing} probe records not readable "
                             f"{DRAIN_S:.0f} s after the load")
    reads = sum(len(r) for r in seen.values())
    return {"records": load.sent, "probe_records": len(found), "reads": reads,
            "resolution_ms": resolution_ms(seen), "worker_cpu_percent": cpu * 100,
            "p50_ms": found[len(found) // 2] * 1000,
            "p99_ms": found[int(len(found) * 0.99)] * 1000}


def table_latency(bootstrap: str, tmp: str, rate: int, batch_size: int, flush_ms: int,
                  seconds: float, log: Path) -> dict[str, Any]:
    app_id = f"bench-table-latency-{rate}-{flush_ms}-{random.randrange(1 << 20):x}"
    source = f"{app_id}-in"
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(source, PARTITIONS, 1)]))
    worker = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": app_id, "DATA_DIR": f"{tmp}/{app_id}",
        "LOG_LEVEL": "WARNING", "DEPLOYMENT_MODULES": "bench.deployments.orders",
        "BENCH_TOPIC": source, "BENCH_JOB": "latest",
        "BATCH_SIZE": str(batch_size), "FLUSH_INTERVAL_MS": str(flush_ms)}, log_path=log)
    with worker:
        worker.wait_ready(120)
        figures = asyncio.run(measure(bootstrap, worker, source, f"{source}-latest", rate,
                                      seconds))
        assert worker.process is not None
        figures["peak_rss_mib"] = peak_rss_mib(worker.process.pid)
    return {"offered_msgs_per_s": rate, "batch_size": batch_size,
            "flush_interval_ms": flush_ms, **figures}
