"""Choosing a partition: Kafka's murmur2 for keyed records, even round-robin for the rest.

Keyed records land where the Java client would put them (`toPositive(murmur2(key)) % n`),
so producers in other languages and Kafka Streams agree on which partition owns a key.
Keyless records go round-robin over all of the topic's partitions, one counter per topic,
as the platform's seed service does; Kafka's newer "sticky" behaviour is deliberately not
used, because it fills one partition per batch and leaves consumers unevenly loaded.

aiokafka's `murmur2` is a port of `org.apache.kafka.common.utils.Utils.murmur2`; the unit
tests check it against values computed by the Java client itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from aiokafka.partitioner import murmur2

__all__ = ["Partitioner", "key_partition", "murmur2_signed"]


def murmur2_signed(data: bytes) -> int:
    """The hash as Java's `Utils.murmur2` returns it (a signed 32-bit int)."""
    value = murmur2(data)
    return value - (1 << 32) if value >= 1 << 31 else value


def key_partition(key: bytes, partition_count: int) -> int:
    """The partition Kafka's default partitioner picks for `key` among `partition_count`."""
    return (murmur2(key) & 0x7FFFFFFF) % partition_count


class Partitioner:
    """Keyed: murmur2. Keyless: round-robin per topic.

    `partition(topic, key, partitions)` is what `Publisher` calls. The instance is also an
    aiokafka `partitioner=` callable, `(key, all_partitions, available) -> partition`; aiokafka
    does not pass the topic there, so keyless records share one counter on that path.
    """

    def __init__(self) -> None:
        self._counters: dict[str, Iterator[int]] = {}

    def partition(self, topic: str, key: bytes | None, partitions: Sequence[int]) -> int:
        """Pick a partition of `topic` from its (sorted) partition ids."""
        if key is not None:
            return partitions[key_partition(key, len(partitions))]
        counter = self._counters.get(topic)
        if counter is None:
            counter = self._counters[topic] = itertools.count()
        return partitions[next(counter) % len(partitions)]

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        return self.partition("", key, sorted(all_partitions))
