"""The partitioner picks what the reference clients pick, and spreads keyless records evenly."""

from __future__ import annotations

from collections import Counter

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kafka import partitioner as partitioner_module
from streams.kafka.partitioner import (
    KEY_PARTITIONERS,
    Partitioner,
    fnv1a_32,
    hash_placements,
    key_partition,
    key_placer,
    murmur2,
    murmur2_signed,
)

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


# Measured with kcat 1.7.1 (librdkafka 2.0.2, default partitioner consistent_random) on a
# real broker: key -> (partition of 3, partition of 12).
KCAT_PARTITIONS = {
    "21": (1, 4), "foobar": (2, 5), "a-little-bit-long-string": (0, 6), "abc": (0, 6),
    "a": (0, 3), "hello": (1, 10), "user-42": (1, 7), "key-999": (2, 8),
    "customer-007": (1, 7), "über": (2, 8), "12345": (0, 0),
}

# Computed with Sarama v1.61.1's NewHashPartitioner (its default) and Go's hash/fnv:
# key -> (fnv.New32a sum, partition of 3, partition of 12).
SARAMA_VECTORS = {
    "": (0x811C9DC5, 0, 3),
    "a": (0xE40C292C, 0, 0),
    "foobar": (0xBF9CF968, 0, 0),
    "21": (0x8CF297EC, 0, 0),
    "abc": (0x1A47E90B, 2, 11),
    "hello": (0x4F9F2CAB, 0, 3),
    "user-42": (0x026073AB, 0, 3),
    "key-999": (0xF4B6A694, 2, 8),
    "customer-007": (0x3C4D5971, 0, 9),
    "über": (0x7BA3E4CF, 1, 7),
    "a-little-bit-long-string": (0xDDA30828, 1, 4),
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": (0x1731F50E, 1, 10),
}


@pytest.mark.parametrize("key", sorted(JAVA_VECTORS))
def test_murmur2_matches_the_java_client(key: str) -> None:
    expected_hash, on_3, on_12 = JAVA_VECTORS[key]
    data = key.encode()
    assert murmur2_signed(data) == expected_hash
    assert key_partition(data, 3) == on_3
    assert key_partition(data, 12) == on_12


@pytest.mark.parametrize("name", ["consistent", "consistent_random"])
def test_crc32_partitioners_match_kcat(name: str) -> None:
    for key, (on_3, on_12) in KCAT_PARTITIONS.items():
        assert (key_partition(key.encode(), 3, name),
                key_partition(key.encode(), 12, name)) == (on_3, on_12), key


@pytest.mark.parametrize("key", sorted(SARAMA_VECTORS))
def test_fnv1a_matches_sarama(key: str) -> None:
    expected_hash, on_3, on_12 = SARAMA_VECTORS[key]
    assert fnv1a_32(key.encode()) == expected_hash
    assert key_partition(key.encode(), 3, "fnv1a") == on_3
    assert key_partition(key.encode(), 12, "fnv1a") == on_12


def test_murmur2_random_is_murmur2_for_keys() -> None:
    for key, (_, on_3, on_12) in JAVA_VECTORS.items():
        assert key_partition(key.encode(), 3, "murmur2_random") == on_3
        assert key_partition(key.encode(), 12, "murmur2_random") == on_12


def test_unknown_partitioner_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown key partitioner 'crc'"):
        key_partition(b"k", 3, "crc")


def test_placements_name_every_hash_that_fits() -> None:
    # "abc" on 12 partitions: murmur2 3, crc32 6, FNV-1a 11
    assert hash_placements(b"abc", 3, 12) == ["murmur2"]
    assert hash_placements(b"abc", 6, 12) == ["crc32"]
    assert hash_placements(b"abc", 11, 12) == ["fnv1a"]
    assert hash_placements(b"abc", 1, 12) == []
    # "foobar" on 3 partitions: murmur2 and FNV-1a both give 0
    assert hash_placements(b"foobar", 0, 3) == ["murmur2", "fnv1a"]


def test_keyed_records_go_where_the_topics_partitioner_says() -> None:
    partitioner = Partitioner(lambda topic: {"clicks": "consistent_random"}.get(topic,
                                                                               "murmur2"))
    assert partitioner.partition("clicks", b"foobar", [0, 1, 2]) == 2
    assert partitioner.partition("orders", b"foobar", [0, 1, 2]) == 0


def test_a_placer_places_as_partition_does() -> None:
    def partitioner_for(topic: str) -> str:
        return {"clicks": "fnv1a"}.get(topic, "murmur2")

    keys = [key.encode() for key in JAVA_VECTORS] + [b"foobar"]
    for topic in ("clicks", "orders"):
        place = Partitioner(partitioner_for).placer(topic, [3, 4, 5])
        reference = Partitioner(partitioner_for)
        assert [place(key) for key in keys] == [
            reference.partition(topic, key, [3, 4, 5]) for key in keys]
        assert [place(None) for _ in range(4)] == [3, 4, 5, 3]  # keyless: round-robin


def test_placers_remember_keys_per_hash_and_partitions_and_start_again_when_full(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partitioner_module, "_PLACEMENTS_KEPT", 5)
    partitioner = Partitioner(lambda topic: {"clicks": "fnv1a"}.get(topic, "murmur2"))
    keys = [f"key-{n}".encode() for n in range(12)]
    for _ in range(2):  # the second time from what the placers kept
        for topic, partitions in (("orders", [0, 1, 2]), ("clicks", [0, 1, 2]),
                                  ("orders", [0, 1, 2, 3, 4])):
            place = partitioner.placer(topic, partitions)
            assert [place(key) for key in keys] == [
                partitions[key_partition(key, len(partitions), "murmur2" if topic == "orders"
                                         else "fnv1a")] for key in keys]


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


@settings(max_examples=300)
@given(st.binary(max_size=40), st.integers(1, 64), st.sampled_from(KEY_PARTITIONERS))
def test_a_key_placer_places_as_key_partition_does(data: bytes, count: int,
                                                   partitioner: str) -> None:
    assert key_placer(count, partitioner)(data) == key_partition(data, count, partitioner)


def test_a_key_seen_before_is_not_hashed_again() -> None:
    first = key_partition(b"customer-cached", 12)
    hits = key_partition.cache_info().hits
    assert key_partition(b"customer-cached", 12) == first
    assert key_partition.cache_info().hits == hits + 1
    assert key_partition(b"customer-cached", 7) == (aiokafka_murmur2(b"customer-cached")
                                                          & 0x7FFFFFFF) % 7


@settings(max_examples=2_000)
@given(st.binary(max_size=64))
def test_murmur2_is_aiokafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)
