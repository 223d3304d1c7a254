"""Choosing a partition: the key hash the topic's producers use, round-robin for the rest.

Every Kafka client places a keyed record with a hash of the key bytes, but not all the same
hash. Which one a topic's producers use is a setting (`KEY_PARTITIONER`, per topic
`KEY_PARTITIONER_TOPICS`), because tables must know where a key lives:

- `murmur2`: `toPositive(murmur2(key)) % n`, the Java client and Kafka Streams;
  `murmur2_random` is librdkafka's Java-compatible option, the same for keyed records.
- `consistent`, `consistent_random`: `crc32(key) % n`, librdkafka's (confluent-kafka for
  Python, Go and .NET, kcat, rdkafka); `consistent_random` is its default.
- `fnv1a`: `abs(int32(fnv1a_32(key)) % n)`, Sarama's (Go) default hash partitioner.

The `_random` variants differ from their base only for keyless records, which go
round-robin over all of the topic's partitions here, one counter per topic, as the
platform's seed service does; Kafka's newer "sticky" behaviour is deliberately not used,
because it fills one partition per batch and leaves consumers unevenly loaded.

`murmur2` is `org.apache.kafka.common.utils.Utils.murmur2`, compiled (aiokafka's port is
pure Python, about 14 times slower on a 15-byte key); librdkafka's `rd_crc32` is the zlib
CRC-32; the unit tests check each against the reference clients, and `murmur2` against
aiokafka's.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, get_args

from murmurhash2 import murmurhash2

__all__ = [
    "KEY_PARTITIONERS", "PARTITIONER_HASHES", "KeyPartitioner", "Partitioner", "fnv1a_32",
    "hash_of", "hash_placements", "key_partition", "key_placer", "murmur2", "murmur2_signed",
    "setting_for_hash",
]

KeyPartitioner = Literal["murmur2", "murmur2_random", "consistent", "consistent_random",
                         "fnv1a"]
KEY_PARTITIONERS: tuple[str, ...] = get_args(KeyPartitioner)

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


#: The seed of Kafka's murmur2 (`Utils.murmur2`).
_MURMUR2_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data` (unsigned 32-bit), as the Java client's
    `Utils.murmur2`: MurmurHash2 with seed 0x9747b28c.

    Compiled (the `murmurhash2` package): a table with more keys than any cache holds
    hashes nearly every record's key, and the pure-Python hash was a seventh of such a job.
    """
    return murmurhash2(data, _MURMUR2_SEED)


def murmur2_signed(data: bytes) -> int:
    """The hash as Java's `Utils.murmur2` returns it (a signed 32-bit int)."""
    return _int32(murmur2(data))


def fnv1a_32(data: bytes) -> int:
    """32-bit FNV-1a, as Go's `hash/fnv.New32a` computes it (unsigned)."""
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def _int32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def _murmur2_place(key: bytes, partition_count: int) -> int:
    return (murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % partition_count


def _crc32_place(key: bytes, partition_count: int) -> int:
    return zlib.crc32(key) % partition_count


def _fnv1a_place(key: bytes, partition_count: int) -> int:
    # Sarama: `int32(hasher.Sum32()) % numPartitions`, negated when negative. Go's % keeps
    # the dividend's sign, so the result is |hash| mod n.
    return abs(_int32(fnv1a_32(key))) % partition_count


#: Hash name -> placement of a key among n partitions.
PARTITIONER_HASHES: dict[str, Callable[[bytes, int], int]] = {
    "murmur2": _murmur2_place,
    "crc32": _crc32_place,
    "fnv1a": _fnv1a_place,
}

_HASH_OF: dict[str, str] = {
    "murmur2": "murmur2", "murmur2_random": "murmur2",
    "consistent": "crc32", "consistent_random": "crc32",
    "fnv1a": "fnv1a",
}

#: The setting to suggest for a hash: the name the client's own documentation uses.
_SETTING_FOR_HASH = {"murmur2": "murmur2", "crc32": "consistent_random", "fnv1a": "fnv1a"}


def hash_of(partitioner: str) -> str:
    """The hash (`murmur2`, `crc32`, `fnv1a`) a partitioner setting places keys with."""
    try:
        return _HASH_OF[partitioner]
    except KeyError:
        raise ValueError(f"unknown key partitioner {partitioner!r}: use one of "
                         f"{', '.join(KEY_PARTITIONERS)}") from None


def setting_for_hash(hash_name: str) -> str:
    """The partitioner setting that places keys with `hash_name`."""
    return _SETTING_FOR_HASH[hash_name]


#: Keys whose partition a `Partitioner.placer` keeps, per hash and partition list.
_PLACEMENTS_KEPT = 65_536


@functools.lru_cache(maxsize=65_536)
def key_partition(key: bytes, partition_count: int, partitioner: str = "murmur2") -> int:
    """The partition `partitioner` picks for `key` among `partition_count` (by default
    Kafka's Java client's murmur2).

    Remembered for the most recent keys: a worker sees the same keys again and again
    (sink records, routed lookups), a hit costs half a compiled murmur2 and a tenth of
    the pure-Python FNV-1a.
    """
    return PARTITIONER_HASHES[hash_of(partitioner)](key, partition_count)


def key_placer(partition_count: int, partitioner: str = "murmur2") -> Callable[[bytes], int]:
    """`key_partition` for one partition count and partitioner, as a function of the key
    bytes, not cached: for callers keeping the partitions of their keys themselves (a
    table's value cache), to whom a cache would only add a miss per new key."""
    place = PARTITIONER_HASHES[hash_of(partitioner)]

    def placed(key: bytes) -> int:
        return place(key, partition_count)

    return placed


def hash_placements(key: bytes, partition: int, partition_count: int) -> list[str]:
    """The hashes that put `key` on `partition` (several can, by chance, with few
    partitions)."""
    return [name for name, place in PARTITIONER_HASHES.items()
            if place(key, partition_count) == partition]


class Partitioner:
    """Keyed: the topic's key partitioner. Keyless: round-robin per topic.

    `partitioner_for(topic)` names the topic's key partitioner (by default always murmur2;
    `Publisher` passes `Settings.key_partitioner_for`). `partition(topic, key, partitions)`
    is what `Publisher` calls. The instance is also an aiokafka/Faust `partitioner=`
    callable, `(key, all_partitions, available) -> partition`; neither passes the topic
    there, so that path uses the partitioner of topic `""` (the global default) and
    keyless records share one counter.
    """

    def __init__(self, partitioner_for: Callable[[str], str] | None = None) -> None:
        self._partitioner_for = partitioner_for or (lambda topic: "murmur2")
        self._counters: dict[str, Iterator[int]] = {}
        # per (hash, partitions): the partition of each key placed lately (see placer)
        self._placements: dict[tuple[str, tuple[int, ...]], dict[bytes, int]] = {}

    def placer(self, topic: str, partitions: Sequence[int]) -> Callable[[bytes | None], int]:
        """`partition(topic, key, partitions)` as a function of `key`, with the topic's
        partitioner looked up once (for a batch of records).

        The partitions of recent keys are kept in a dict per hash and partition list,
        up to `_PLACEMENTS_KEPT` keys (then it starts again): a dict lookup is a fraction
        of a call of `key_partition`'s cache, and a sink job places every record.
        """
        hash_name = self._partitioner_for(topic)
        count = len(partitions)
        placed = self._placements.setdefault((hash_name, tuple(partitions)), {})

        def place(key: bytes | None) -> int:
            if key is None:
                return self.partition(topic, None, partitions)
            partition = placed.get(key)
            if partition is None:
                if len(placed) >= _PLACEMENTS_KEPT:
                    placed.clear()
                partition = placed[key] = partitions[key_partition(key, count, hash_name)]
            return partition

        return place

    def partition(self, topic: str, key: bytes | None, partitions: Sequence[int]) -> int:
        """Pick a partition of `topic` from its (sorted) partition ids."""
        if key is not None:
            return partitions[key_partition(key, len(partitions),
                                            self._partitioner_for(topic))]
        counter = self._counters.get(topic)
        if counter is None:
            counter = self._counters[topic] = itertools.count()
        return partitions[next(counter) % len(partitions)]

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        return self.partition("", key, sorted(all_partitions))
