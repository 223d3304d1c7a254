"""Dead-letter replay on a real broker: bad headers skipped with the reason, the original
timestamp kept, one replay of a topic at a time, and the position committed as it goes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.processing.dlq_replay import ReplayBusyError, replay_dead_letters
from tests.integration.test_batch_agents import read_all

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL_MS = 1_600_000_000_123


async def create(bootstrap: str, *topics: str, config: dict[str, str] | None = None,
                 ) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 3, 1, topic_configs=config or {})
                                   for t in topics])
    finally:
        await admin.close()


def letter(n: int, partition: str = "1", timestamp: str = str(ORIGINAL_MS),
           ) -> dict[str, Any]:
    return {"key": f"k{n}".encode(), "value": json.dumps({"n": n}).encode(), "headers": [
        ("trace", f"t{n}".encode()), ("x-error-type", b"ValueError"),
        ("x-error-message", b"refused"), ("x-original-partition", partition.encode()),
        ("x-original-offset", str(n).encode()), ("x-original-timestamp", timestamp.encode()),
        ("x-attempts", b"4"), ("x-failed-at", b"2026-01-01T00:00:00+00:00")]}


async def write_letters(bootstrap: str, dlq: str, letters: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(dlq, partition=0, **entry) for entry in letters]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def test_bad_headers_are_skipped_with_the_reason_and_timestamps_kept(
        kafka_bootstrap: str, unique_name: str) -> None:
    topic, dlq = unique_name, f"{unique_name}.dlq"
    asyncio.run(create(kafka_bootstrap, topic, dlq, config={"retention.ms": "-1"}))
    asyncio.run(write_letters(kafka_bootstrap, dlq, [
        letter(0), letter(1, partition="99"), letter(2, partition="-1"),
        letter(3, timestamp="soon"), letter(4, partition="2")]))

    result = asyncio.run(replay_dead_letters(kafka_bootstrap, topic))
    assert (result.replayed, result.skipped) == (2, 3)
    assert len(result.rejected) == 3
    assert result.rejected[0].startswith(f"{dlq}[0]@1: x-original-partition '99' is not")
    assert "'-1'" in result.rejected[1]
    assert result.rejected[2].startswith(f"{dlq}[0]@3: x-original-timestamp 'soon'")

    replayed = sorted(asyncio.run(read_all(kafka_bootstrap, topic)), key=lambda r: r.key)
    assert [(r.key, r.partition, r.timestamp) for r in replayed] == [
        (b"k0", 1, ORIGINAL_MS), (b"k4", 2, ORIGINAL_MS)]
    assert dict(replayed[0].headers) == {"trace": b"t0"}

    again = asyncio.run(replay_dead_letters(kafka_bootstrap, topic))
    assert (again.replayed, again.skipped) == (0, 0), "the position moved past them all"


def test_a_time_past_the_topic_retention_is_not_kept_so_the_broker_keeps_the_record(
        kafka_bootstrap: str, unique_name: str) -> None:
    """Kafka deletes a segment whose newest record is past `retention.ms` at its next
    retention check: replayed with a 2020 time into a 7-day topic, a letter would vanish."""
    topic, dlq = unique_name, f"{unique_name}.dlq"
    asyncio.run(create(kafka_bootstrap, topic, dlq))  # Kafka's default retention: 7 days
    recent_ms = int(time.time() * 1000) - 3_600_000
    asyncio.run(write_letters(kafka_bootstrap, dlq, [
        letter(0), letter(1, timestamp=str(recent_ms))]))

    result = asyncio.run(replay_dead_letters(kafka_bootstrap, topic))
    assert (result.replayed, result.restamped) == (2, 1)
    old, recent = sorted(asyncio.run(read_all(kafka_bootstrap, topic)), key=lambda r: r.key)
    assert abs(old.timestamp - time.time() * 1000) < 120_000, "stamped with the replay time"
    assert dict(old.headers) == {"trace": b"t0",
                                 "x-original-timestamp": str(ORIGINAL_MS).encode()}
    assert recent.timestamp == recent_ms
    assert dict(recent.headers) == {"trace": b"t1"}


def test_a_second_replay_while_one_runs_is_refused_here_and_in_the_cli(
        kafka_bootstrap: str, unique_name: str) -> None:
    topic, dlq = unique_name, f"{unique_name}.dlq"
    asyncio.run(create(kafka_bootstrap, topic, dlq))
    asyncio.run(write_letters(kafka_bootstrap, dlq, [letter(n) for n in range(3)]))

    async def while_another_process_replays() -> None:
        # what a replay elsewhere looks like: a member of the topic's replay group
        other = AIOKafkaConsumer(dlq, bootstrap_servers=kafka_bootstrap,
                                 group_id=f"{topic}.dlq-replay", enable_auto_commit=False)
        await other.start()
        try:
            while not other.assignment():
                await other.getmany(timeout_ms=100)
            with pytest.raises(ReplayBusyError, match="is running"):
                await replay_dead_letters(kafka_bootstrap, topic)
            cli = await asyncio.create_subprocess_exec(
                sys.executable, "worker.py", "dlq", "replay", topic, cwd=ROOT,
                env={"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await asyncio.wait_for(cli.communicate(), 120)
            lines = err.decode().strip().splitlines()
            assert cli.returncode == 1, (out, err)
            assert len(lines) == 1 and "is running" in lines[0], lines
        finally:
            await other.stop()

    asyncio.run(while_another_process_replays())
    assert asyncio.run(read_all(kafka_bootstrap, topic)) == []

    async def two_at_once() -> list[Any]:
        return await asyncio.gather(replay_dead_letters(kafka_bootstrap, topic),
                                    replay_dead_letters(kafka_bootstrap, topic),
                                    return_exceptions=True)

    first, second = asyncio.run(two_at_once())
    assert first.replayed == 3
    assert isinstance(second, ReplayBusyError)
    assert len(asyncio.run(read_all(kafka_bootstrap, topic))) == 3


def test_the_position_is_committed_as_the_replay_goes(kafka_bootstrap: str,
                                                      unique_name: str) -> None:
    topic, dlq = unique_name, f"{unique_name}.dlq"
    total = 3000
    asyncio.run(create(kafka_bootstrap, topic, dlq))
    asyncio.run(write_letters(kafka_bootstrap, dlq, [letter(n) for n in range(total)]))
    group = f"{topic}.dlq-replay"

    async def crash_mid_replay() -> int:
        """Start a replay, "crash" it once a first position is committed; return where the
        position stands after the crash."""
        watcher = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group,
                                   enable_auto_commit=False)
        await watcher.start()
        replay = asyncio.create_task(replay_dead_letters(kafka_bootstrap, topic))
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while not (position := await watcher.committed(TopicPartition(dlq, 0)) or 0):
                assert not replay.done(), "the replay ended before committing anything"
                assert loop.time() < deadline, "no position committed within 120 s"
                await asyncio.sleep(0.01)
            replay.cancel()  # the crash
            await asyncio.gather(replay, return_exceptions=True)
            return await watcher.committed(TopicPartition(dlq, 0)) or position
        finally:
            replay.cancel()
            await asyncio.gather(replay, return_exceptions=True)
            await watcher.stop()

    position = asyncio.run(crash_mid_replay())
    assert 0 < position < total, "committed before the end"
    sent_before = len(asyncio.run(read_all(kafka_bootstrap, topic)))
    assert sent_before - position <= 500, "more than one batch beyond the committed position"

    rest = asyncio.run(replay_dead_letters(kafka_bootstrap, topic))
    assert rest.replayed == total - position
    values = [json.loads(r.value)["n"] for r in asyncio.run(read_all(kafka_bootstrap, topic))]
    assert set(values) == set(range(total))
    assert len(values) - total <= 500, "a crash re-sends at most one batch"
