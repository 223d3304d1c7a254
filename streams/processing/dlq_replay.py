"""Dead-letter replay: send dead letters back to their original topic once the bug is fixed.

Progress is kept as the committed offset of the consumer group `<topic>.dlq-replay` on
`<topic>.dlq`, committed after each fetched batch: a replay starts where the last one
stopped (a crash re-sends at most one batch) and goes to the end the topic had when it
started. One replay of a topic runs at a time: a second one gets `ReplayBusyError`.
Letters skipped by `where`/`offsets` (or left over by `limit`) stay
ahead of that position, so the position only moves over the unbroken run of letters that
were replayed; a later replay still sees the rest. A letter replayed out of that run can be
replayed again by a later run (handlers are at-least-once anyway).

The replayed record keeps the original key, value, headers (the `x-error-*`/`x-original-*`
headers are dropped) and timestamp (`x-original-timestamp`), and goes to the partition it
came from. A timestamp older than half the topic's `retention.ms` is not kept: the broker
deletes a segment whose newest record is past retention at its next retention check, so
such letters would vanish before any worker read them. They are sent with the replay's time
and keep `x-original-timestamp` (counted in `ReplayResult.restamped`).

A letter whose headers say otherwise impossible things (a partition the topic does not
have, a timestamp that is not one) or that Kafka refuses is skipped, with the reason in
`ReplayResult.rejected`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from streams._faust.clients import refresh_metadata
from streams.errors import ReplayBusyError
from streams.kafka.client_options import client_options
from streams.processing.dead_letters import dead_letter_topic_name
from streams.settings import Settings

_DLQ_HEADER = re.compile(r"^x-(error-|original-|attempts$|failed-at$)")
_WHERE = re.compile(r"^\s*([\w.\-]+)\s*(=|!=|~)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Where:
    """A filter on a dead letter's headers: `name=value`, `name!=value`, `name~substring`.

    `x-error-type=ValueError` replays only letters whose handler raised ValueError.
    """

    header: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Where:
        match = _WHERE.match(text)
        if not match:
            raise ValueError(f"--where {text!r}: expected HEADER=VALUE, HEADER!=VALUE or "
                             "HEADER~TEXT, e.g. x-error-type=ValueError")
        return cls(*match.groups())

    def matches(self, headers: dict[str, bytes]) -> bool:
        actual = headers.get(self.header, b"").decode(errors="replace")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        return self.value in actual


@dataclass
class ReplayResult:
    replayed: int = 0
    skipped: int = 0
    #: Letters sent with the replay's time: their own was too old for the topic's retention.
    restamped: int = 0
    by_partition: dict[int, int] = field(default_factory=dict)
    #: Letters that cannot be replayed, each with the reason (bad headers, refused by Kafka).
    rejected: list[str] = field(default_factory=list)


#: Source topics with a replay running in this process.
_RUNNING: set[str] = set()
#: How many rejected letters a result lists by name (the count is in `skipped`).
REJECTED_LISTED = 100
JOIN_TIMEOUT_S = 60.0
KAFKA_DEFAULT_RETENTION_MS = 7 * 24 * 3_600_000


async def replay_dead_letters(
    cluster: Settings | str,
    source_topic: str,
    *,
    group_id: str | None = None,
    limit: int | None = None,
    where: str | Where | None = None,
    offsets: Collection[tuple[int, int]] | None = None,
) -> ReplayResult:
    """Republish dead letters of `source_topic` to it; return how many and how many skipped.

    `offsets` selects letters by their (partition, offset) in `<source_topic>.dlq`;
    `group_id` (default `<source_topic>.dlq-replay`) keeps the replay position. Raises
    `ReplayBusyError` while another replay of the topic runs: the replay is a member of that
    consumer group while it runs, so two replays never hold the same partition.
    `cluster` is the settings (brokers, TLS, SASL), or bootstrap servers of a PLAINTEXT
    cluster.
    """
    if source_topic in _RUNNING:
        raise ReplayBusyError(f"a replay of {source_topic!r} is already running here")
    _RUNNING.add(source_topic)
    try:
        return await _replay(client_options(cluster), source_topic,
                             group_id or f"{source_topic}.dlq-replay", limit,
                             Where.parse(where) if isinstance(where, str) else where,
                             None if offsets is None else set(offsets))
    finally:
        _RUNNING.discard(source_topic)


async def _replay(options: dict[str, Any], source_topic: str, group_id: str,
                  limit: int | None, condition: Where | None,
                  selected: set[tuple[int, int]] | None) -> ReplayResult:
    dlq = dead_letter_topic_name(source_topic)
    retention_ms = await _refuse_if_running(options, source_topic, group_id)
    consumer = AIOKafkaConsumer(**options, group_id=group_id, enable_auto_commit=False,
                                auto_offset_reset="earliest", isolation_level="read_committed")
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    result = ReplayResult()
    try:
        await _partitions(consumer, dlq)
        targets = await _partitions(consumer, source_topic)
        consumer.subscribe([dlq])
        partitions = sorted(await _assigned(consumer, dlq), key=lambda tp: tp.partition)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            position = await consumer.position(tp)
            unbroken = True
            while position < ends[tp] and (limit is None or result.replayed < limit):
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
                records = batch.get(tp, [])
                commit: OffsetAndMetadata | None = None
                for record in records:
                    if record.offset >= ends[tp] or (limit is not None
                                                     and result.replayed >= limit):
                        break
                    headers = {k: bytes(v or b"") for k, v in record.headers}
                    wanted = ((selected is None or (tp.partition, record.offset) in selected)
                              and (condition is None or condition.matches(headers)))
                    if wanted:
                        problem = await _send_back(producer, source_topic, targets, record,
                                                   headers, retention_ms, result)
                        if problem is None:
                            result.replayed += 1
                            result.by_partition[tp.partition] = (
                                result.by_partition.get(tp.partition, 0) + 1)
                        else:  # it will never replay: the position may move past it
                            result.skipped += 1
                            if len(result.rejected) < REJECTED_LISTED:
                                result.rejected.append(
                                    f"{dlq}[{tp.partition}]@{record.offset}: {problem}")
                    else:
                        result.skipped += 1
                        unbroken = False
                    if unbroken:
                        commit = OffsetAndMetadata(record.offset + 1, "")
                    position = record.offset + 1
                if commit is not None:  # as it goes: a crash re-sends at most this batch
                    await consumer.commit({tp: commit})
                if not records:
                    position = await consumer.position(tp)
    finally:
        await producer.stop()
        await consumer.stop()
    return result


async def _send_back(producer: AIOKafkaProducer, topic: str, partitions: set[int],
                     record: Any, headers: dict[str, bytes], retention_ms: int | None,
                     result: ReplayResult) -> str | None:
    """Republish one letter; the reason when it cannot be (nothing is sent then)."""
    partition = _original_partition(headers, record.partition)
    if partition not in partitions:
        raw = headers.get("x-original-partition", b"").decode(errors="replace")[:40]
        return (f"x-original-partition {raw!r} is not a partition of {topic!r} "
                f"({len(partitions)} partitions)")
    timestamp: int | None = None
    kept = [(k, v) for k, v in record.headers if not _DLQ_HEADER.match(k)]
    raw_time = headers.get("x-original-timestamp")
    if raw_time is not None:
        text = raw_time.decode(errors="replace")
        if not re.fullmatch(r"[0-9]{1,19}", text) or int(text) >= 2**63:
            return f"x-original-timestamp {text[:40]!r} is not epoch milliseconds"
        timestamp = int(text)
        if not outlives_retention(timestamp, retention_ms, time.time() * 1000):
            timestamp = None  # the broker's time: the letter must outlive the next cleanup
            kept.append(("x-original-timestamp", raw_time))
            result.restamped += 1
    try:
        await producer.send_and_wait(topic, key=record.key, value=record.value,
                                     partition=partition, timestamp_ms=timestamp,
                                     headers=kept)
    except KafkaError as exc:
        if exc.retriable:
            raise
        return f"Kafka refused it: {type(exc).__name__}: {exc}"
    return None


def outlives_retention(timestamp_ms: int, retention_ms: int | None, now_ms: float) -> bool:
    """Whether a record stamped `timestamp_ms` stays readable long enough: for at least half
    the topic's time retention (None: the topic is not cleaned up by time)."""
    return retention_ms is None or now_ms - timestamp_ms < retention_ms / 2


async def _refuse_if_running(options: dict[str, Any], source_topic: str,
                             group_id: str) -> int | None:
    """Raise `ReplayBusyError` if a replay of the topic runs; return the topic's time
    retention in ms (None when it has none: `retention.ms=-1` or compaction only)."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JOIN_TIMEOUT_S
    try:
        while True:
            try:
                [response] = await admin.describe_consumer_groups([group_id])
                break
            except KafkaError as exc:  # e.g. no group coordinator yet on a fresh cluster
                if not exc.retriable or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        members = response.groups[0][5]
        if members:
            raise ReplayBusyError(f"a replay of {source_topic!r} is running (consumer group "
                                  f"{group_id!r} has {len(members)} member(s)); try again "
                                  "when it has finished")
        return await _time_retention_ms(admin, source_topic)
    finally:
        await admin.close()


async def _time_retention_ms(admin: AIOKafkaAdminClient, topic: str) -> int | None:
    [response] = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic,
                        {"cleanup.policy": None, "retention.ms": None})])
    [(error_code, _message, _type, _name, entries)] = response.resources
    if error_code:  # e.g. not allowed to describe it: assume Kafka's default
        return KAFKA_DEFAULT_RETENTION_MS
    config = {entry[0]: entry[1] for entry in entries}
    if "delete" not in (config.get("cleanup.policy") or "delete"):
        return None
    retention = int(config.get("retention.ms") or KAFKA_DEFAULT_RETENTION_MS)
    return None if retention < 0 else retention


async def _assigned(consumer: AIOKafkaConsumer, topic: str) -> set[TopicPartition]:
    """The partitions of `topic` the group gave this replay, once it has joined."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JOIN_TIMEOUT_S
    while not consumer.assignment():
        if loop.time() > deadline:
            raise TimeoutError(f"the replay did not join its consumer group within "
                               f"{JOIN_TIMEOUT_S:g}s")
        await asyncio.sleep(0.05)
    return {tp for tp in consumer.assignment() if tp.topic == topic}


def _original_partition(headers: dict[str, bytes], fallback: int) -> int:
    raw = headers.get("x-original-partition")
    if raw is None:
        return fallback
    text = raw.decode(errors="replace")
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else -1


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await refresh_metadata(consumer)
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise ValueError(f"topic {topic!r} does not exist: nothing was ever dead-lettered "
                         "for this topic, or the name is wrong")
    return set(partitions)
