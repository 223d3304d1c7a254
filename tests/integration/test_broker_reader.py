"""The broker reader of the order checks against a real broker: reads, and is closed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from streams import Settings, create_app
from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing import send_all

pytestmark = pytest.mark.integration


def open_sockets() -> int:
    return sum(os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
               for fd in os.listdir("/proc/self/fd")
               if os.path.exists(f"/proc/self/fd/{fd}"))


async def test_reads_where_records_are_and_closes_its_client(
        kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> None:
    await ensure_topics(kafka_bootstrap, [TopicSpec(unique_name, 1, 1)])
    await send_all(kafka_bootstrap, unique_name, [(b"k", b"v")] * 3, partitions=1)
    app = create_app(Settings(bootstrap_servers=kafka_bootstrap, app_id=unique_name,
                              table_store="memory", data_dir=tmp_path), agents=[], tables=[])
    reader = app.broker_reader
    tp = TopicPartition(unique_name, 0)
    before = open_sockets()
    assert await reader.committed(tp) == 0
    assert await reader.first_offset(tp, 1) == 1
    assert open_sockets() > before
    await reader.close()
    assert open_sockets() == before
    assert await reader.first_offset(tp, 2) == 2  # a new client after close
    await reader.close()
    assert open_sockets() == before
