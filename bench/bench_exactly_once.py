"""The cost of PROCESSING_GUARANTEE=exactly_once: the same workload at_least_once and
exactly_once, one after the other in one run, on the same pre-produced topic.

The workload is tests/deployments/eos.py (a batch agent counting per key in a RocksDB
table, sending each id to a topic itself and returning it for a sink): 20,000 keyed items,
3 partitions, BATCH_SIZE 500, one worker process at a time, each with its own consumer
group, in the order at_least_once, exactly_once, at_least_once, exactly_once (so a warm-up
or a neighbour's load does not favour one side). Timed from the worker's readiness to its
group's committed offsets reaching the end, so start-up is left out.

    .venv/bin/python -m bench bench.bench_exactly_once
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import WorkerProcess, committed_lag, wait_for

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = int(os.environ.get("BENCH_EOS_MESSAGES", "20000"))


async def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=f"k{i % 50}".encode(),
                                       value=json.dumps({"id": i}).encode())
                   for i in range(count)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def measure(bootstrap: str, topic: str, guarantee: str, workdir: Path, round_: int) -> float:
    """Messages per second of one worker with `guarantee`, ready to fully committed."""
    app_id = f"bench-{guarantee}-{round_}-{topic}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": app_id,
           "PROCESSING_GUARANTEE": guarantee, "DATA_DIR": str(workdir / app_id),
           "DEPLOYMENT_MODULES": "tests.deployments.eos", "TEST_TOPIC": topic,
           "TEST_BATCH_SIZE": "500", "FLUSH_INTERVAL_MS": "200", "LOG_LEVEL": "WARNING"}
    with WorkerProcess(ROOT, env, log_path=workdir / f"{app_id}.log") as worker:
        worker.wait_ready(180)
        started = time.monotonic()
        wait_for(lambda: asyncio.run(committed_lag(bootstrap, app_id, topic)) == 0, 1800,
                 f"{guarantee}: every record committed", interval=0.5)
        return MESSAGES / (time.monotonic() - started)


def run(bootstrap_servers: str) -> dict[str, Any]:
    topic = f"bench-eos-{int(time.time())}"
    asyncio.run(ensure_topics(bootstrap_servers, [TopicSpec(name, 3, 1) for name in
                                                  (topic, f"{topic}.out", f"{topic}.early")]))
    asyncio.run(produce(bootstrap_servers, topic, MESSAGES))
    figures: dict[str, list[float]] = {"at_least_once": [], "exactly_once": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in (1, 2):
            for guarantee, rates in figures.items():
                rates.append(measure(bootstrap_servers, topic, guarantee, Path(tmp), round_))
    for guarantee, rates in figures.items():
        shown = ", ".join(f"{rate:.0f}" for rate in rates)
        print(f"{guarantee:>14}: {shown} msg/s ({MESSAGES} messages each)")
    ratio = sum(figures["exactly_once"]) / sum(figures["at_least_once"])
    print(f"exactly_once / at_least_once: {ratio:.2f}")
    return {"messages": MESSAGES, "msg_per_s": figures, "ratio": ratio}
