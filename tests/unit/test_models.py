from dataclasses import FrozenInstanceError, dataclass, fields
from datetime import UTC, datetime
from types import SimpleNamespace

import faust
import msgspec
import pytest

from streams.errors import DecodeError
from streams.processing.models import (
    Message,
    MessageDecoder,
    decode,
    to_message,
    transform_headers,
)


class Order(faust.Record, serializer="json"):
    order_id: str
    amount_cents: int


@dataclass
class Click:
    url: str
    user: str


def event(value: bytes, key: bytes | None = b"c1", headers=None, **coords):
    record = SimpleNamespace(topic=coords.get("topic", "orders"),
                             partition=coords.get("partition", 2),
                             offset=coords.get("offset", 41), key=key, value=value,
                             timestamp=1_700_000_000.5, headers=headers or [])
    return SimpleNamespace(message=record)


def test_transform_keeps_coordinates_and_decodes_key_and_value() -> None:
    source = event(b'{"order_id": "o1", "amount_cents": 250}',
                   headers=[("trace", b"abc"), ("source", b"web")])
    message = to_message(source, Order, str)
    assert isinstance(message, Message)
    assert (message.topic, message.partition, message.offset) == ("orders", 2, 41)
    assert message.key == "c1"
    assert message.value == Order(order_id="o1", amount_cents=250)
    assert message.timestamp == datetime.fromtimestamp(1_700_000_000.5, tz=UTC)
    assert message.headers == {"trace": b"abc", "source": b"web"}
    assert message.coordinates == "orders[2]@41"
    assert message.event is source


def test_headers_become_str_to_bytes_and_the_last_repeat_wins() -> None:
    assert transform_headers([("a", b"1"), ("b", None), ("a", b"2")]) == {"a": b"2", "b": b""}
    assert transform_headers({"x": "text"}) == {"x": b"text"}
    assert transform_headers(None) == {}


def test_dataclass_values_and_plain_types() -> None:
    assert decode(b'{"url": "/", "user": "u"}', Click, "value") == Click(url="/", user="u")
    assert decode(b"raw", bytes, "value") == b"raw"
    assert decode(b"text", str, "value") == "text"
    assert decode(b"42", int, "key") == 42
    assert decode(b'{"a": 1}', dict, "value") == {"a": 1}
    assert decode(None, Order, "key") is None


@pytest.mark.parametrize(("raw", "reason"), [
    (b"not json", "value is not valid JSON"),
    (b"[1, 2]", "must be a JSON object for Order"),
    (b'{"order_id": "o1", "amount_cents": "lots"}', "does not fit Order"),
    (b'{"order_id": "o1", "amount_cents": 1, "extra": 1}', "fields ['extra']"),
    (b'{"order_id": "o1"}', "does not fit Order"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_undecodable_values_raise_decode_error_with_coordinates(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        to_message(event(raw, offset=7), Order, str)
    assert str(info.value).startswith("orders[2]@7: ")
    assert reason in str(info.value)


def test_undecodable_key_is_reported_as_the_key() -> None:
    with pytest.raises(DecodeError, match="key 'abc' is not an integer"):
        to_message(event(b'{"order_id": "o", "amount_cents": 1}', key=b"abc"), Order, int)


class Strict(faust.Record, serializer="json"):
    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise TypeError("n must not be negative")


def timestamped(value: bytes, timestamp: float) -> SimpleNamespace:
    source = event(value)
    source.message.timestamp = timestamp
    return source


@pytest.mark.parametrize(("source", "declared", "reason"), [
    (event(b"[" * 100_000), dict, "nested deeper than 64 levels"),
    (event(b"[" * 100_000), Order, "nested deeper than 64 levels"),
    (event(b"[" * 100_000), None, "nested deeper than 64 levels"),
    (event(b'{"n": -1}'), Strict, "n must not be negative"),
    (timestamped(b"{}", 1e20), dict, "record timestamp 1e+20 is not a valid time"),
    (timestamped(b"{}", float("nan")), dict, "record timestamp nan is not a valid time"),
])
def test_any_failure_of_decoding_a_record_is_a_decode_error(source: SimpleNamespace,
                                                            declared: type, reason: str) -> None:
    """A record whose decoding raises anything becomes a dead letter, never a crash."""
    with pytest.raises(DecodeError) as info:
        to_message(source, declared, str)
    assert str(info.value).startswith("orders[2]@41: ")
    assert reason in str(info.value)
    assert len(str(info.value)) < 400


def test_an_undecodable_declared_type_is_refused_when_the_agent_is_declared() -> None:
    from streams import batch_agent

    class Plain:
        pass

    with pytest.raises(TypeError, match="cannot decode a batch_agent .* value into"):
        @batch_agent("orders", value_type=Plain, register=False)
        async def handle(batch: list[Message[Plain]]) -> None: ...


class StructOrder(msgspec.Struct):
    order_id: int
    customer: str
    amount: int = 0


class StrictOrder(msgspec.Struct, forbid_unknown_fields=True):
    order_id: int


def test_msgspec_structs_are_decoded_and_validated() -> None:
    assert decode(b'{"order_id": 1, "customer": "c", "extra": true}', StructOrder, "value") == \
        StructOrder(order_id=1, customer="c")
    with pytest.raises(ValueError, match=r"value does not fit StructOrder: Expected `int`, got "
                                         r"`str` - at `\$.order_id`"):
        decode(b'{"order_id": "x", "customer": "c"}', StructOrder, "value")
    with pytest.raises(ValueError, match="value does not fit StructOrder: Object missing required "
                                         "field `customer`"):
        decode(b'{"order_id": 1}', StructOrder, "value")
    with pytest.raises(ValueError, match="value does not fit StrictOrder: Object contains "
                                         "unknown field `extra`"):
        decode(b'{"order_id": 1, "extra": 2}', StrictOrder, "value")
    with pytest.raises(ValueError, match="value does not fit StructOrder: JSON is malformed"):
        decode(b"\xff{", StructOrder, "value")


def test_a_record_that_does_not_fit_a_struct_is_a_decode_error() -> None:
    event = SimpleNamespace(message=SimpleNamespace(
        topic="orders", partition=1, offset=7, key=b"c", value=b'{"order_id": []}',
        timestamp=0.0, headers=[]))
    with pytest.raises(DecodeError, match=r"orders\[1\]@7: value does not fit StructOrder"):
        to_message(event, StructOrder)



class Point(msgspec.Struct):
    x: int
    y: int


def test_a_decoder_builds_the_message_the_dataclass_would() -> None:
    source = event(b'{"x": 1, "y": 2}', headers=[("trace", b"abc")])
    built = MessageDecoder(Point, str)(source)
    expected = Message(topic="orders", partition=2, offset=41, key="c1", value=Point(1, 2),
                       timestamp=datetime.fromtimestamp(1_700_000_000.5, tz=UTC),
                       headers={"trace": b"abc"}, raw_key=b"c1",
                       raw_value=b'{"x": 1, "y": 2}', event=source)
    assert built == expected
    assert [getattr(built, f.name) for f in fields(Message)] == [
        getattr(expected, f.name) for f in fields(Message)]
    with pytest.raises(FrozenInstanceError):
        built.key = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("declared", "raw", "error"), [
    (str, b"\xff", "key is not UTF-8 text"),
    (Point, b'{"x": "one", "y": 2}', "key does not fit Point: Expected `int`, got `str`"),
    (int, b"seven", "key 'seven' is not an integer"),
])
def test_a_decoder_fails_as_decode_does(declared: type, raw: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        decode(raw, declared, "key")
    with pytest.raises(DecodeError, match=rf"orders\[2\]@41: {error}"):
        MessageDecoder(bytes, declared)(event(b"v", key=raw))


def test_each_record_keeps_its_own_timestamp_when_neighbours_share_one() -> None:
    decoder = MessageDecoder(bytes, str)
    times = [1_700_000_000.5, 1_700_000_000.5, 1_700_000_000.501, 1_700_000_000.5]
    decoded = []
    for timestamp in times:
        source = event(b"v")
        source.message.timestamp = timestamp
        decoded.append(decoder(source).timestamp)
    assert decoded == [datetime.fromtimestamp(t, tz=UTC) for t in times]


def test_a_batch_decodes_in_order_and_sets_aside_what_does_not() -> None:
    decoder = MessageDecoder(Point, str)
    good = [event(b'{"x": %d, "y": 0}' % n) for n in range(3)]
    bad_value = event(b'{"x": "one", "y": 2}')
    bad_time = event(b'{"x": 9, "y": 9}')
    bad_time.message.timestamp = 1e300  # out of datetime's range
    messages, failed = decoder.decode_all([good[0], bad_value, good[1], bad_time, good[2]])
    assert [m.value.x for m in messages] == [0, 1, 2]
    assert [m.event for m in messages] == good
    assert [(source, type(error)) for source, error in failed] == [
        (bad_value, DecodeError), (bad_time, DecodeError)]
    assert "does not fit Point" in str(failed[0][1])
    assert "timestamp" in str(failed[1][1])
    assert all(m.timestamp == datetime.fromtimestamp(1_700_000_000.5, tz=UTC) for m in messages)
    messages[0].headers["added"] = b"x"  # type: ignore[index]
    assert messages[1].headers == {}, "each message has its own headers"
