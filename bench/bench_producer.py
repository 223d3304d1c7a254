"""Producer benchmark: Publisher's bulk path vs a raw aiokafka producer, and the HTTP path.

Both producers get the same 500,000 keyed JSON messages of about 200 bytes, the same
producer options (acks=all, idempotence, batch size, linger) and a topic of their own with
3 partitions, in the same run. Target: Publisher at >= 0.9x the raw producer's rate. The
HTTP part runs with the producer service's garbage-collection thresholds.

    python -c "import bench.bench_producer as b; b.run('127.0.0.1:9092')"
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import statistics
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.gc_tuning import set_collection_thresholds
from streams.kafka.publisher import Outgoing, Publisher, PublisherConfig
from streams.settings import Settings
from streams.web.producer_service import create_producer_web_app

MESSAGES = 500_000
HTTP_MESSAGES = 100_000
HTTP_BATCH = 500
HTTP_CLIENTS = 4
ROUNDS = 3
PARTITIONS = 3


def _value(n: int) -> dict[str, Any]:
    return {"id": n, "kind": "order", "payload": "x" * 160}


async def _topic(bootstrap: str, prefix: str) -> str:
    name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()
    return name


async def _raw(bootstrap: str, options: dict[str, Any]) -> float:
    topic = await _topic(bootstrap, "raw")
    values = [_value(n) for n in range(MESSAGES)]
    keys = [f"key-{n % 10_000}" for n in range(MESSAGES)]
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    producer = AIOKafkaProducer(**options, key_serializer=str.encode,
                                value_serializer=lambda v: dumps(v).encode())
    await producer.start()
    try:
        await producer.send_and_wait(topic, _value(-1), key="warm-up")
        began = time.perf_counter()
        futures = [await producer.send(topic, value, key=key)
                   for value, key in zip(values, keys, strict=True)]
        await asyncio.gather(*futures)
        return MESSAGES / (time.perf_counter() - began)
    finally:
        await producer.stop()


async def _ours(publisher: Publisher, bootstrap: str) -> float:
    topic = await _topic(bootstrap, "publisher")
    records = [Outgoing(_value(n), f"key-{n % 10_000}") for n in range(MESSAGES)]
    await publisher.publish(topic, _value(-1), key="warm-up")
    began = time.perf_counter()
    results = await publisher.publish_many(topic, records)
    elapsed = time.perf_counter() - began
    failed = sum(1 for r in results if isinstance(r, Exception))
    if failed:
        raise RuntimeError(f"{failed} records failed during the benchmark")
    return MESSAGES / elapsed


async def _http(publisher: Publisher, bootstrap: str) -> float:
    topic = await _topic(bootstrap, "http")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runner = web.AppRunner(create_producer_web_app(publisher))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/topics/{topic}"
    bodies = [json.dumps({"records": [
        {"key": f"key-{n % 10_000}", "value": _value(n)} for n in range(start, start + HTTP_BATCH)
    ]}).encode() for start in range(0, HTTP_MESSAGES, HTTP_BATCH)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(url, data=body,
                                    headers={"Content-Type": "application/json"}) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
                await response.read()

    try:
        async with aiohttp.ClientSession() as session:
            began = time.perf_counter()
            await asyncio.gather(*(client(session) for _ in range(HTTP_CLIENTS)))
            return HTTP_MESSAGES / (time.perf_counter() - began)
    finally:
        await runner.cleanup()


async def _run(bootstrap_servers: str) -> dict[str, float]:
    settings = Settings(bootstrap_servers=bootstrap_servers)
    async with Publisher(settings, PublisherConfig(deadline_s=300, attempt_timeout_s=60),
                         client_id="bench-publisher") as publisher:
        options = {k: v for k, v in publisher.producer_options().items() if k != "client_id"}
        # Interleaved rounds, median of each: on a shared machine a burst of load would
        # otherwise land on one side of the comparison only.
        raws, ours = [], []
        for _ in range(ROUNDS):
            raws.append(await _raw(bootstrap_servers, options))
            ours.append(await _ours(publisher, bootstrap_servers))
        # as the producer service runs (streams.web.producer_service.run_producer_service)
        thresholds = gc.get_threshold()
        set_collection_thresholds(settings.gc_young_threshold)
        try:
            http = await _http(publisher, bootstrap_servers)
        finally:
            gc.set_threshold(*thresholds)
    raw_rate, our_rate = statistics.median(raws), statistics.median(ours)
    return {"raw_aiokafka_msgs_per_s": raw_rate, "publisher_msgs_per_s": our_rate,
            "ratio": our_rate / raw_rate, "http_msgs_per_s": http,
            "rounds": ROUNDS, "ratio_per_round": [o / r for o, r in zip(ours, raws, strict=True)]}


def run(bootstrap_servers: str) -> dict[str, float]:
    """Run the producer benchmark against `bootstrap_servers`; print and return the rates."""
    result = asyncio.run(_run(bootstrap_servers))
    print(f"producer: {MESSAGES:,} msgs of ~200 B, acks=all, idempotent, {PARTITIONS} partitions"
          f", median of {ROUNDS} interleaved rounds")
    print(f"  {'raw aiokafka':<28}{result['raw_aiokafka_msgs_per_s']:>12,.0f} msgs/s")
    print(f"  {'Publisher.publish_many':<28}{result['publisher_msgs_per_s']:>12,.0f} msgs/s"
          f"   ({result['ratio']:.2f}x raw, target >= 0.90x; rounds "
          + ", ".join(f"{r:.2f}x" for r in result["ratio_per_round"]) + ")")
    print(f"  {'HTTP, 500-record requests':<28}{result['http_msgs_per_s']:>12,.0f} msgs/s"
          f"   ({HTTP_MESSAGES:,} msgs, {HTTP_CLIENTS} clients)")
    return result
