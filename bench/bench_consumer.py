"""Consumer throughput: our batch agent vs a plain Faust agent vs a raw aiokafka loop.

The same pre-produced topic (keyed JSON events of ~200 bytes, 10,000 keys, 3 partitions)
is consumed three times in one run, each by its own consumer group:

- ours: `@batch_agent` decoding into a faust.Record and counting per key in a RocksDB
  `PerKeyTable` (a real worker process);
- plain Faust: a per-event `app.agent` with the same RocksDB table (a real worker process,
  at log level info: at warn and above Faust's terminal spinner sets the root logger to
  DEBUG, which would make the baseline several times slower than it need be);
- raw aiokafka: `getmany`, `json.loads`, counting in a dict, commit.

Each figure is messages / seconds from process start to the group's committed offsets
reaching the end, so the Faust variants include their start-up (a few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import free_port
from tests.support.kafka_local import kafka_for_session

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "200000"))
KEYS = 10_000


async def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    rng = random.Random(1)
    pad = "x" * 120
    try:
        pending = []
        for i in range(count):
            user = f"user-{rng.randrange(KEYS):05d}"
            value = json.dumps({"id": i, "user": user, "kind": "click", "payload": pad})
            pending.append(await producer.send(topic, key=user.encode(), value=value.encode()))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def wait_committed(bootstrap: str, group: str, topic: str, total: int,
                         timeout: float, process: subprocess.Popen[bytes]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = 0
            for tp in partitions:
                done += await consumer.committed(tp) or 0
            if done >= total:
                return
            if process.poll() is not None:
                raise RuntimeError(f"the {group} worker exited with {process.returncode}")
            await asyncio.sleep(0.25)
        raise TimeoutError(f"group {group} committed {done} of {total} within {timeout}s")
    finally:
        await consumer.stop()


async def raw_loop(bootstrap: str, topic: str, total: int) -> Counter[str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-raw",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    counts: Counter[str] = Counter()
    seen = 0
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                for record in records:
                    data = json.loads(record.value)
                    counts[data["user"]] += 1
                seen += len(records)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    return counts


def run_worker(command: list[str], env: dict[str, str], bootstrap: str, group: str,
               topic: str, log: Path) -> float:
    began = time.monotonic()
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                                   stdout=output, stderr=subprocess.STDOUT)
        try:
            asyncio.run(wait_committed(bootstrap, group, topic, MESSAGES, 1800, process))
            return time.monotonic() - began
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def run(bootstrap_servers: str | None = None) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        bootstrap = bootstrap_servers or stack.enter_context(kafka_for_session())
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        topic = f"bench-events-{random.randrange(1 << 30):x}"
        asyncio.run(ensure_topics(bootstrap, [TopicSpec(topic, 3, 1)]))
        began = time.monotonic()
        asyncio.run(produce(bootstrap, topic, MESSAGES))
        produce_rate = MESSAGES / (time.monotonic() - began)
        logs = Path("test-output")
        logs.mkdir(exist_ok=True)

        began = time.monotonic()
        asyncio.run(raw_loop(bootstrap, topic, MESSAGES))
        raw_s = time.monotonic() - began

        ours_group = f"{topic}-ours"
        ours_s = run_worker(
            [sys.executable, "worker.py", "worker"],
            {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": ours_group,
             "DATA_DIR": f"{tmp}/ours", "WEB_PORT": str(free_port()), "LOG_LEVEL": "WARNING",
             "DEPLOYMENT_MODULES": "bench.deployments.counting", "BENCH_TOPIC": topic},
            bootstrap, ours_group, topic, logs / "bench-consumer-ours.log")

        plain_group = f"{topic}-plain"
        plain_s = run_worker(
            [sys.executable, "bench/plain_faust_app.py", "worker", "-l", "info"],
            {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": plain_group,
             "DATA_DIR": f"{tmp}/plain", "WEB_PORT": str(free_port()), "BENCH_TOPIC": topic},
            bootstrap, plain_group, topic, logs / "bench-consumer-plain.log")

    result = {
        "messages": MESSAGES,
        "produce_msgs_per_s": produce_rate,
        "raw_aiokafka_msgs_per_s": MESSAGES / raw_s,
        "batch_agent_msgs_per_s": MESSAGES / ours_s,
        "plain_faust_msgs_per_s": MESSAGES / plain_s,
    }
    result["ours_vs_plain_faust"] = result["batch_agent_msgs_per_s"] / result[
        "plain_faust_msgs_per_s"]
    result["ours_vs_raw"] = result["batch_agent_msgs_per_s"] / result["raw_aiokafka_msgs_per_s"]
    print(f"consumer ({MESSAGES:,} messages, 10,000 keys, 3 partitions)")
    for name in ("raw_aiokafka", "batch_agent", "plain_faust"):
        print(f"  {name:<14} {result[name + '_msgs_per_s']:>10,.0f} msg/s")
    print(f"  ours / plain Faust   {result['ours_vs_plain_faust']:.2f}x   (target >= 3x)")
    # the raw loop has no start-up to speak of while ours includes Faust's: the ratio of
    # the rates between first and last record is P1's ours / raw (bench.bench_peers)
    print(f"  ours / raw aiokafka  {result['ours_vs_raw']:.2f}x   (from process start, "
          "Faust's start-up included; without it: P1 ours / raw in the peers benchmark)")
    return result
