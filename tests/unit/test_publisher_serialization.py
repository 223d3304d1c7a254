"""Values and keys: JSON by default, models serialize themselves, bytes/str pass through."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

import faust
import msgspec
import pytest

from streams.errors import PublishError
from streams.kafka.publisher import Outgoing, Publisher, encode_headers, encode_value
from streams.settings import Settings
from tests.unit.publisher_fakes import FakeProducer, fast_config, started


class Order(faust.Record, serializer="json"):
    id: int
    customer: str


@dataclass
class Point:
    x: int
    y: int


class Custom:
    def dumps(self) -> bytes:
        return b"custom-bytes"


def test_bytes_and_str_pass_through() -> None:
    assert encode_value(b"\x00raw") == b"\x00raw"
    assert encode_value("héllo") == "héllo".encode()
    assert encode_value(None) is None


def test_json_data_models_and_dataclasses() -> None:
    assert json.loads(encode_value({"a": [1, 2], "b": None})) == {"a": [1, 2], "b": None}
    assert encode_value(42) == b"42"
    assert json.loads(encode_value(Point(1, 2))) == {"x": 1, "y": 2}
    assert json.loads(encode_value(Order(id=7, customer="c-1"))) == {"id": 7,
                                                                      "customer": "c-1"}
    assert encode_value(Custom()) == b"custom-bytes"
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert json.loads(encode_value({"at": when})) == {"at": "2024-01-02T03:04:05"}


class Line(faust.Record, serializer="json"):
    order: Order
    at: datetime.datetime


class Tag(msgspec.Struct):
    name: str
    since: datetime.date


def test_records_dataclasses_and_structs_are_plain_json_nested_too() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    line = Line(order=Order(id=1, customer="c"), at=when)
    assert json.loads(encode_value(line)) == {
        "order": {"id": 1, "customer": "c"}, "at": "2024-01-02T03:04:05+00:00"}
    assert json.loads(encode_value(Tag("vip", datetime.date(2024, 1, 2)))) == {
        "name": "vip", "since": "2024-01-02"}
    assert json.loads(encode_value({"tags": [Tag("a", datetime.date(2024, 1, 1))],
                                    "point": Point(1, 2)})) == {
        "tags": [{"name": "a", "since": "2024-01-01"}], "point": {"x": 1, "y": 2}}
    assert json.loads(encode_value((Order(id=2, customer="d"), 3))) == [
        {"id": 2, "customer": "d"}, 3]


def test_unserializable_values_raise_type_error() -> None:
    with pytest.raises(TypeError, match="object"):
        encode_value({"x": object()})


def test_headers_become_str_bytes_pairs() -> None:
    assert encode_headers({"a": "1", "b": b"2"}) == [("a", b"1"), ("b", b"2")]
    assert encode_headers([("a", "x"), ("a", "y")]) == [("a", b"x"), ("a", b"y")]
    assert encode_headers(None) == []
    with pytest.raises(TypeError, match="header 'n'"):
        encode_headers({"n": 5})  # type: ignore[dict-item]


async def test_publisher_sends_encoded_records() -> None:
    fake = FakeProducer()
    publisher = await started(fake)
    await publisher.publish("t", {"v": 1}, key="user-42", headers={"trace": "abc"})
    sent = fake.sent[0]
    assert sent["key"] == b"user-42" and sent["value"] == b'{"v":1}'
    assert sent["headers"] == [("trace", b"abc")]
    assert sent["partition"] == 1  # murmur2("user-42") on 3 partitions, as the Java client


async def test_publisher_places_keys_with_the_topics_partitioner() -> None:
    fake = FakeProducer(topics={"t": 3, "crc": 3, "fnv": 3})
    settings = Settings(key_partitioner_topics=(("crc", "consistent_random"),
                                                ("fnv", "fnv1a")))
    publisher = Publisher(settings, fast_config(), producer_factory=fake)
    await publisher.start()
    for topic in ("t", "crc", "fnv"):
        await publisher.publish(topic, 1, key="foobar")
        await publisher.publish_many(topic, [Outgoing(2, key="foobar")])
    # "foobar" on 3 partitions: murmur2 0, CRC32 2, FNV-1a 0; "abc": murmur2 0, CRC32 0,
    # FNV-1a 2
    await publisher.publish("fnv", 3, key="abc")
    assert [(s["topic"], s["partition"]) for s in fake.sent] == [
        ("t", 0), ("t", 0), ("crc", 2), ("crc", 2), ("fnv", 0), ("fnv", 0), ("fnv", 2)]


async def test_a_bad_record_fails_alone_in_publish_many() -> None:
    fake = FakeProducer()
    publisher = await started(fake)
    results = await publisher.publish_many(
        "t", [Outgoing({"ok": 1}), Outgoing({"bad": object()}), Outgoing(None, key=None)])
    assert results[0].offset == 0
    assert isinstance(results[1], PublishError) and "not JSON serializable" in str(results[1])
    assert isinstance(results[2], PublishError) and "key or a value" in str(results[2])
    assert len(fake.sent) == 1
