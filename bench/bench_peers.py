"""Our batch agents against Quix Streams and a raw aiokafka loop, on the same topic.

One topic of `BENCH_ORDERS` (default 200,000) JSON orders of ~200 bytes, keyed by one
of 10,000 customers, 3 partitions, filled once and read by every peer in its own
consumer group:

- raw: an aiokafka loop (`getmany`, `json.loads`, count and sum in a dict, commit), in
  this process: the ceiling for Python;
- P1: per customer, count and sum of the amount in a RocksDB table with a changelog.
  Ours: `@batch_agent` + `PerKeyTable`, typed model values (`BENCH_MODEL`, default
  `faust`: faust.Record; `msgspec`: msgspec.Struct). Quix Streams:
  `sdf.update(..., stateful=True)`, defaults;
- P7: a stateless map of each order to one sink record. Ours: `@batch_agent(sink=...)`
  returning `(key, value)` pairs, at-least-once and exactly-once. Quix Streams:
  `sdf.apply` then `sdf.to_topic`, defaults;
- P3: latency of an echo agent (each record published unchanged to a sink) at a steady
  offered load, with the seed's defaults BATCH_SIZE=100, FLUSH_INTERVAL_MS=1000, and at
  2,000 msg/s with FLUSH_INTERVAL_MS=50: time from the source record's send to the sink
  record's timestamp, p50 and p99.

Throughput is records / (last - first record handled), as each job reports it itself
(bench.marks): start-up and group join are left out for every peer alike. Ours must also
reach committed offsets at the end of the topic (the sink acknowledged first).

Run parts with `BENCH_PEERS` (comma-separated: raw, p1, p7, p7eos, p3; default all),
e.g. `BENCH_PEERS=raw,p1 python -m bench bench.bench_peers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.bench_consumer import wait_committed
from bench.foundation import peak_rss_mib
from bench.marks import read_mark
from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import WorkerProcess, send_all, wait_for
from tests.support.kafka_local import kafka_for_session

ROOT = Path(__file__).resolve().parent.parent
ORDERS = int(os.environ.get("BENCH_ORDERS", "200000"))
KEYS = 10_000
PARTITIONS = 3
LOGS = Path("test-output")
PARTS = os.environ.get("BENCH_PEERS", "raw,p1,p7,p7eos,p3").split(",")
MODEL = os.environ.get("BENCH_MODEL", "faust")
LOADS = [(500, 1000), (1_000, 1000), (2_000, 1000), (10_000, 1000), (2_000, 50)]
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "10"))


def orders(count: int) -> list[tuple[bytes, bytes]]:
    rng = random.Random(11)
    note = "n" * 90
    records = []
    for i in range(count):
        customer = f"customer-{rng.randrange(KEYS):05d}"
        value = {"order_id": i, "customer": customer, "amount": rng.randint(1, 10_000),
                 "currency": "EUR", "items": rng.randint(1, 9), "note": note}
        records.append((customer.encode(), json.dumps(value).encode()))
    return records


async def raw_loop(bootstrap: str, topic: str, total: int) -> float:
    """Seconds from the first fetched record to the last one counted and committed."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-raw",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    totals: dict[str, list[int]] = {}
    seen = 0
    first = 0.0
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            if batches and not first:
                first = time.monotonic()
            for records in batches.values():
                for record in records:
                    data = json.loads(record.value)
                    entry = totals.setdefault(data["customer"], [0, 0])
                    entry[0] += 1
                    entry[1] += data["amount"]
                seen += len(records)
            if batches:
                await consumer.commit()
        return time.monotonic() - first
    finally:
        await consumer.stop()


def _rate(mark_file: Path) -> float:
    mark = wait_for(lambda: read_mark(mark_file), 5, f"{mark_file}")
    return mark["records"] / (mark["last"] - mark["first"])


def run_ours(bootstrap: str, tmp: str, topic: str, job: str, **extra: str) -> dict[str, Any]:
    group = f"{topic}-ours-{job}-{random.randrange(1 << 20):x}"
    mark = Path(tmp) / f"{group}.mark"
    worker = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": group, "DATA_DIR": f"{tmp}/{group}",
        "LOG_LEVEL": "WARNING", "DEPLOYMENT_MODULES": "bench.deployments.orders",
        "BENCH_TOPIC": topic, "BENCH_JOB": job, "BENCH_SINK": f"{group}-out",
        "BENCH_EXPECT": str(ORDERS), "BENCH_MARK_FILE": str(mark), "BENCH_MODEL": MODEL,
        **extra}, log_path=LOGS / f"bench-peers-{job}.log")
    with worker, _profiled(worker, job):
        assert worker.process is not None
        asyncio.run(wait_committed(bootstrap, group, topic, ORDERS, 900, worker.process))
        rss = peak_rss_mib(worker.process.pid)
    return {"msgs_per_s": _rate(mark), "peak_rss_mib": rss}


@contextlib.contextmanager
def _profiled(worker: WorkerProcess, job: str) -> Iterator[None]:
    """With `BENCH_PYSPY=1`, py-spy samples the worker into test-output/pyspy-<job>.txt
    (collapsed stacks: `py-spy record --format raw`)."""
    if os.environ.get("BENCH_PYSPY") != "1" or worker.process is None:
        yield
        return
    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record",
                            "--pid", str(worker.process.pid), "--format", "raw", "--rate", "200",
                            "-o", str(LOGS / f"pyspy-{job}.txt")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


def run_quix(bootstrap: str, tmp: str, topic: str, job: str) -> dict[str, Any]:
    group = f"{topic}-quix-{job}-{random.randrange(1 << 20):x}"
    mark = Path(tmp) / f"{group}.mark"
    env = {**os.environ, "BENCH_EXPECT": str(ORDERS), "BENCH_MARK_FILE": str(mark)}
    with open(LOGS / f"bench-peers-quix-{job}.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.quix_jobs", job, bootstrap, topic, group,
             f"{tmp}/{group}", f"{group}-out"], cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT)
        rss = [0.0]

        def done() -> bool:
            with contextlib.suppress(OSError):  # the process may just have ended
                rss[0] = peak_rss_mib(process.pid)
            return read_mark(mark) is not None or process.poll() is not None

        try:
            wait_for(done, 900, f"quix {job} to handle {ORDERS:,} records", interval=0.05)
            process.wait(120)
        finally:
            if process.poll() is None:
                process.kill()
    if process.returncode not in (0, None) and read_mark(mark) is None:
        raise RuntimeError(f"quix {job} exited with {process.returncode}")
    return {"msgs_per_s": _rate(mark), "peak_rss_mib": rss[0]}


async def offer_load(bootstrap: str, topic: str, rate: int, seconds: float) -> int:
    """Send `rate` records/s for `seconds`, each carrying its send time (`sent`, ms)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
    await producer.start()
    sent = 0
    tick = 0.01
    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        pending = []
        while (elapsed := loop.time() - began) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                value = json.dumps({"n": sent, "sent": time.time() * 1000}).encode()
                pending.append(await producer.send(topic, key=f"k{sent % KEYS}".encode(),
                                                   value=value))
                sent += 1
            await asyncio.sleep(tick)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def sink_latencies(bootstrap: str, topic: str, count: int, timeout: float) -> list[float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    latencies: list[float] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout
        while len(latencies) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    latencies.append(record.timestamp - json.loads(record.value)["sent"])
    finally:
        await consumer.stop()
    if len(latencies) < count:
        raise AssertionError(f"{topic}: {len(latencies)} of {count} records in the sink")
    return sorted(latencies)


def latency(bootstrap: str, tmp: str, rate: int, flush_ms: int) -> dict[str, Any]:
    app_id = f"bench-latency-{rate}-{flush_ms}-{random.randrange(1 << 20):x}"
    source, sink = f"{app_id}-in", f"{app_id}-out"
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(source, PARTITIONS, 1),
                                          TopicSpec(sink, PARTITIONS, 1)]))
    worker = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": app_id, "DATA_DIR": f"{tmp}/{app_id}",
        "LOG_LEVEL": "WARNING", "DEPLOYMENT_MODULES": "bench.deployments.orders",
        "BENCH_TOPIC": source, "BENCH_JOB": "echo", "BENCH_SINK": sink,
        "BATCH_SIZE": "100", "FLUSH_INTERVAL_MS": str(flush_ms)},
        log_path=LOGS / "bench-peers-latency.log")
    with worker:
        worker.wait_ready(120)
        sent = asyncio.run(offer_load(bootstrap, source, rate, LOAD_SECONDS))
        found = asyncio.run(sink_latencies(bootstrap, sink, sent, 300))
    return {"offered_msgs_per_s": rate, "flush_interval_ms": flush_ms, "records": sent,
            "p50_ms": found[len(found) // 2], "p99_ms": found[int(len(found) * 0.99)]}


def run(bootstrap_servers: str | None = None) -> dict[str, Any]:
    LOGS.mkdir(exist_ok=True)
    result: dict[str, Any] = {"orders": ORDERS, "keys": KEYS, "model": MODEL}
    with contextlib.ExitStack() as stack:
        bootstrap = bootstrap_servers or stack.enter_context(kafka_for_session())
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        topic = f"bench-orders-{random.randrange(1 << 30):x}"
        asyncio.run(ensure_topics(bootstrap, [TopicSpec(topic, PARTITIONS, 1)]))
        asyncio.run(send_all(bootstrap, topic, orders(ORDERS), PARTITIONS))
        if "raw" in PARTS:
            result["raw_msgs_per_s"] = ORDERS / asyncio.run(raw_loop(bootstrap, topic, ORDERS))
        for job in ("p1", "p7"):
            if job in PARTS:
                result[job] = {"ours": run_ours(bootstrap, tmp, topic, job),
                               "quix": run_quix(bootstrap, tmp, topic, job)}
        if "p7eos" in PARTS:
            result.setdefault("p7", {})["ours_exactly_once"] = run_ours(
                bootstrap, tmp, topic, "p7", PROCESSING_GUARANTEE="exactly_once")
        if "p3" in PARTS:
            result["p3"] = [latency(bootstrap, tmp, rate, flush) for rate, flush in LOADS]
    report(result)
    return result


def report(result: dict[str, Any]) -> None:
    raw = result.get("raw_msgs_per_s")
    print(f"peers ({result['orders']:,} orders of ~200 B, {KEYS:,} keys, {PARTITIONS} "
          f"partitions; our values: {result['model']})")
    if raw:
        print(f"  raw aiokafka loop (dict, no changelog)   {raw:>9,.0f} msg/s")
    names = {"p1": "P1 count+sum, RocksDB + changelog", "p7": "P7 map to a sink topic"}
    for job, title in names.items():
        figures = result.get(job)
        if not figures:
            continue
        print(f"  {title}")
        quix = figures.get("quix", {}).get("msgs_per_s")
        for who in ("ours", "ours_exactly_once", "quix"):
            if who not in figures:
                continue
            rate = figures[who]["msgs_per_s"]
            ratios = []
            if quix and who != "quix":
                ratios.append(f"{rate / quix:.2f}x Quix")
            if raw:
                ratios.append(f"{rate / raw:.2f}x raw")
            print(f"    {who:<18} {rate:>9,.0f} msg/s  peak RSS "
                  f"{figures[who]['peak_rss_mib']:>4.0f} MiB  {'  '.join(ratios)}")
    if result.get("p3"):
        print("  P3 latency, echo agent to a sink, BATCH_SIZE=100 (send -> sink timestamp)")
        for row in result["p3"]:
            print(f"    {row['offered_msgs_per_s']:>6,} msg/s  FLUSH_INTERVAL_MS="
                  f"{row['flush_interval_ms']:<5} p50 {row['p50_ms']:>7,.0f} ms  "
                  f"p99 {row['p99_ms']:>7,.0f} ms")
