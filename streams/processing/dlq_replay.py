"""Dead-letter replay: send dead letters back to their original topic once the bug is fixed.

Progress is kept as the committed offset of the consumer group `<topic>.dlq-replay` on
`<topic>.dlq`: a replay starts where the last one stopped and goes to the end the topic
had when it started. Letters skipped by `where`/`offsets` (or left over by `limit`) stay
ahead of that position, so the position only moves over the unbroken run of letters that
were replayed; a later replay still sees the rest. A letter replayed out of that run can be
replayed again by a later run (handlers are at-least-once anyway).

The replayed record keeps the original key, value and headers (the `x-error-*`/`x-original-*`
headers are dropped) and goes to the partition it came from.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

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
    by_partition: dict[int, int] = field(default_factory=dict)


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
    `group_id` (default `<source_topic>.dlq-replay`) keeps the replay position.
    `cluster` is the settings (brokers, TLS, SASL), or bootstrap servers of a PLAINTEXT
    cluster.
    """
    condition = Where.parse(where) if isinstance(where, str) else where
    selected = set(offsets) if offsets is not None else None
    dlq = dead_letter_topic_name(source_topic)
    options = client_options(cluster)
    consumer = AIOKafkaConsumer(**options, group_id=group_id or f"{source_topic}.dlq-replay",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    result = ReplayResult()
    try:
        partitions = [TopicPartition(dlq, p)
                      for p in sorted(await _partitions(consumer, dlq))]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        commits: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp in partitions:
            position = await consumer.position(tp)
            unbroken = True
            while position < ends[tp] and (limit is None or result.replayed < limit):
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
                records = batch.get(tp, [])
                for record in records:
                    if record.offset >= ends[tp] or (limit is not None
                                                     and result.replayed >= limit):
                        break
                    headers = {k: bytes(v or b"") for k, v in record.headers}
                    wanted = ((selected is None or (tp.partition, record.offset) in selected)
                              and (condition is None or condition.matches(headers)))
                    if wanted:
                        await producer.send_and_wait(
                            source_topic, key=record.key, value=record.value,
                            partition=_original_partition(headers, tp.partition),
                            headers=[(k, v) for k, v in record.headers
                                     if not _DLQ_HEADER.match(k)])
                        result.replayed += 1
                        result.by_partition[tp.partition] = (
                            result.by_partition.get(tp.partition, 0) + 1)
                    else:
                        result.skipped += 1
                        unbroken = False
                    if unbroken:
                        commits[tp] = OffsetAndMetadata(record.offset + 1, "")
                    position = record.offset + 1
                if not records:
                    position = await consumer.position(tp)
        if commits:
            await consumer.commit(commits)
    finally:
        await producer.stop()
        await consumer.stop()
    return result


def _original_partition(headers: dict[str, bytes], fallback: int) -> int:
    try:
        return int(headers["x-original-partition"])
    except (KeyError, ValueError):
        return fallback


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise ValueError(f"topic {topic!r} does not exist: nothing was ever dead-lettered "
                         "for this topic, or the name is wrong")
    return set(partitions)
