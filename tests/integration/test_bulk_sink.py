"""Sink records go out as record batches: placement, order, and acks before the commit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.kafka.partitioner import key_partition
from streams.testing import wait_for
from tests.integration.test_batch_agents import (
    caught_up,
    committed,
    item,
    items_worker,
    produce,
    read_all,
)

pytestmark = pytest.mark.integration


def test_sink_records_land_on_their_key_partition_in_source_order(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    with items_worker(kafka_bootstrap, topic, tmp_path, output_dir,
                      TEST_BATCH_SIZE="500") as worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(3_000)]))
        wait_for(lambda: caught_up(kafka_bootstrap, topic), 120, "every record committed")
    sink = asyncio.run(read_all(kafka_bootstrap, f"{topic}.out"))
    assert sorted(json.loads(r.value)["id"] for r in sink) == list(range(3_000))
    seen: dict[tuple[int, int], int] = {}  # (sink partition, source partition) -> offset
    for record in sorted(sink, key=lambda r: (r.partition, r.offset)):
        assert record.partition == key_partition(record.key, 3), record.key
        value = json.loads(record.value)
        source = (record.partition, value["partition"])
        assert value["offset"] > seen.get(source, -1), "sink records out of source order"
        seen[source] = value["offset"]


def test_a_sink_the_broker_refuses_commits_nothing(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path, output_dir: Path) -> None:
    topic = unique_name
    # every record batch is larger than the sink topic accepts: the acks never come
    asyncio.run(ensure_topics(kafka_bootstrap, [
        TopicSpec(topic, 3, 1), TopicSpec(f"{topic}.out", 3, 1, {"max.message.bytes": "10"})]))
    worker = items_worker(kafka_bootstrap, topic, tmp_path, output_dir, TEST_BATCH_SIZE="50")
    with worker:
        worker.wait_ready()
        asyncio.run(produce(kafka_bootstrap, topic, [item(i) for i in range(200)]))
        assert worker.process is not None
        assert worker.process.wait(120) != 0
    assert asyncio.run(committed(kafka_bootstrap, f"app-{topic}", topic)) == {0: 0, 1: 0, 2: 0}
    assert asyncio.run(read_all(kafka_bootstrap, f"{topic}.out")) == []
