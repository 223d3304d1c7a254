"""An agent stuck with a full buffer does not hold up the worker's other agents.

The fetch loop waits for room in the agents' buffers before each fetch, up to a second;
a buffer still full then has its partitions paused and is not waited for again until it
has room (streams.processing.back_pressure, `BatchingConsumer.wait_for_room`). Without
that, every fetch of every other topic would wait a second while one agent is stuck.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from table_kit import metric

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import WorkerProcess, committed_lag, send_all, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HELD_RECORDS = 2_000


async def send_one(bootstrap: str, topic: str, key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x", key=key)
    finally:
        await producer.stop()


def test_a_stuck_agent_is_paused_and_the_others_keep_their_pace(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    held_topic, free_topic = f"{unique_name}-held", f"{unique_name}-free"
    app_id = f"app-{unique_name}"
    gate = tmp_path / "gate"
    gate.touch()
    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(held_topic, 3, 1),
                                                TopicSpec(free_topic, 3, 1)]))
    asyncio.run(send_all(kafka_bootstrap, held_topic,
                         [(f"k{i}".encode(), b"x") for i in range(HELD_RECORDS)]))

    with WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "APP_ID": app_id,
        "DATA_DIR": str(tmp_path / "data"), "DEPLOYMENT_MODULES": "tests.deployments.stuck",
        "TEST_HELD_TOPIC": held_topic, "TEST_FREE_TOPIC": free_topic,
        "TEST_GATE": str(gate), "STREAM_BUFFER_SIZE": "100", "BATCH_SIZE": "10",
        "FLUSH_INTERVAL_MS": "50",
    }, log_path=output_dir / "worker.log") as worker:
        worker.wait_ready()
        # the held agent's buffer fills up, and its partitions are paused
        wait_for(lambda: metric(worker, "streams_consumer_buffer_full_total",
                                topic=held_topic) >= 1, 60, "the held buffer to be full")

        # records of the other topic are handled one by one without waiting on it
        delays = []
        for i in range(10):
            key = f"probe-{i}"
            sent = time.monotonic()
            asyncio.run(send_one(kafka_bootstrap, free_topic, key.encode()))
            wait_for(lambda key=key: worker.request(f"/api/tables/seen/{key}")[0] == 200,
                     30, f"{key} to be handled", interval=0.01)
            delays.append(time.monotonic() - sent)
        # about 0.1 s each; a fetch loop waiting on the full buffer makes it over 1 s
        assert statistics.median(delays) < 0.6, f"send -> handled: {delays}"

        gate.unlink()  # the held agent gets going: nothing of its topic was lost
        wait_for(lambda: asyncio.run(committed_lag(kafka_bootstrap, app_id, held_topic)) == 0,
                 90, f"the {HELD_RECORDS} held records to be committed")
        assert metric(worker, "streams_consumer_messages_total",
                      topic=held_topic) == HELD_RECORDS
        assert asyncio.run(committed_lag(kafka_bootstrap, app_id, free_topic)) == 0
