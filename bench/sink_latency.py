"""P3 for sinks: an echo agent (each record published unchanged to a sink) at a steady
offered load; time from the source record's send to the sink record's timestamp.

The load runs a second longer on each side of the measured `seconds`: records of the first
second meet a flow just starting, and the last partial batches of a load that stops wait
for the flush interval, which a steady load never makes them do.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import WorkerProcess

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 3
KEYS = 10_000
EDGE_S = 1.0


def measured(rate: int, seconds: float) -> tuple[float, range]:
    """How long to offer `rate` records/s, and the sequence numbers to measure."""
    return seconds + 2 * EDGE_S, range(int(EDGE_S * rate), int((EDGE_S + seconds) * rate))


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


async def sink_latencies(bootstrap: str, topic: str, count: int, timeout: float,
                         window: range) -> list[float]:
    """Of the `count` records, the latencies of those numbered in `window`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    latencies: list[float] = []
    seen = 0
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout
        while seen < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen += len(records)
                for record in records:
                    value = json.loads(record.value)
                    if value["n"] in window:
                        latencies.append(record.timestamp - value["sent"])
    finally:
        await consumer.stop()
    if seen < count:
        raise AssertionError(f"{topic}: {seen} of {count} records in the sink")
    return sorted(latencies)


def sink_latency(bootstrap: str, tmp: str, rate: int, flush_ms: int, seconds: float,
                 log: Path) -> dict[str, Any]:
    app_id = f"bench-latency-{rate}-{flush_ms}-{random.randrange(1 << 20):x}"
    source, sink = f"{app_id}-in", f"{app_id}-out"
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(source, PARTITIONS, 1),
                                          TopicSpec(sink, PARTITIONS, 1)]))
    worker = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "APP_ID": app_id, "DATA_DIR": f"{tmp}/{app_id}",
        "LOG_LEVEL": "WARNING", "DEPLOYMENT_MODULES": "bench.deployments.orders",
        "BENCH_TOPIC": source, "BENCH_JOB": "echo", "BENCH_SINK": sink,
        "BATCH_SIZE": "100", "FLUSH_INTERVAL_MS": str(flush_ms)}, log_path=log)
    with worker:
        worker.wait_ready(120)
        offered, window = measured(rate, seconds)
        sent = asyncio.run(offer_load(bootstrap, source, rate, offered))
        found = asyncio.run(sink_latencies(bootstrap, sink, sent, 300, window))
    return {"offered_msgs_per_s": rate, "flush_interval_ms": flush_ms, "records": sent,
            "measured_records": len(found),
            "p50_ms": found[len(found) // 2], "p99_ms": found[int(len(found) * 0.99)]}
