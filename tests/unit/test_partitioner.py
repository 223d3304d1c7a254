"""The partitioner picks what Kafka's Java client picks, and spreads keyless records evenly."""

from __future__ import annotations

from collections import Counter

import pytest

from streams.kafka.partitioner import Partitioner, key_partition, murmur2_signed

# Computed with org.apache.kafka.common.utils.Utils from kafka-clients 4.1.1:
# key -> (murmur2, toPositive(murmur2) % 3, toPositive(murmur2) % 12). The first rows are
# also the vectors of Kafka's own UtilsTest.testMurmur2.
JAVA_VECTORS = {
    "21": (-973932308, 0, 0),
    "foobar": (-790332482, 0, 6),
    "a-little-bit-long-string": (-985981536, 2, 8),
    "a-little-bit-longer-string": (-1486304829, 2, 11),
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": (-58897971, 2, 5),
    "abc": (479470107, 0, 3),
    "": (275646681, 0, 9),
    "a": (-1563381124, 1, 4),
    "ab": (316155434, 2, 2),
    "12345": (-1188365604, 2, 8),
    "hello": (2132663229, 0, 9),
    "user-42": (1459644460, 1, 4),
    "key-999": (-1349681240, 0, 0),
    "über": (-1718265917, 0, 3),
}


@pytest.mark.parametrize("key", sorted(JAVA_VECTORS))
def test_murmur2_matches_the_java_client(key: str) -> None:
    expected_hash, on_3, on_12 = JAVA_VECTORS[key]
    data = key.encode()
    assert murmur2_signed(data) == expected_hash
    assert key_partition(data, 3) == on_3
    assert key_partition(data, 12) == on_12


def test_keyed_records_go_where_murmur2_says() -> None:
    partitioner = Partitioner()
    for key, (_, on_3, _) in JAVA_VECTORS.items():
        assert partitioner.partition("orders", key.encode(), [0, 1, 2]) == on_3


def test_keyless_records_go_round_robin_per_topic() -> None:
    partitioner = Partitioner()
    picks = [partitioner.partition("a", None, [0, 1, 2]) for _ in range(3001)]
    assert picks[:6] == [0, 1, 2, 0, 1, 2]
    counts = Counter(picks)
    assert max(counts.values()) - min(counts.values()) <= 1
    # Another topic has its own counter: it starts at its first partition.
    assert partitioner.partition("b", None, [0, 1, 2]) == 0


def test_usable_as_aiokafka_partitioner_callable() -> None:
    partitioner = Partitioner()
    assert partitioner(b"user-42", [2, 0, 1], [0, 1]) == 1
    assert [partitioner(None, [0, 1], [0, 1]) for _ in range(4)] == [0, 1, 0, 1]
