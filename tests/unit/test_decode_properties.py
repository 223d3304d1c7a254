"""Whatever a record holds, decoding gives a `Message` or a `DecodeError`, nothing else.

Arbitrary key and value bytes (with JSON-shaped and hostile ones mixed in), arbitrary
headers and timestamps go through the real decode path (`to_message`) for every kind of
declared type. Any other exception would escape the agent and stop the worker on that
record, and on every worker that takes its partition over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import faust
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.errors import DecodeError
from streams.processing.models import Message, to_message


class Order(faust.Record, serializer="json", validation=True):
    order_id: str
    amount_cents: int


class Strict(faust.Record, serializer="json"):
    """A Record whose own checks raise TypeError, not ValueError."""

    n: int

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n > 10:
            raise TypeError("n must be a small int")


@dataclass
class Click:
    url: str
    user: str


DECLARED: list[Any] = [None, object, bytes, str, int, dict, Order, Strict, Click]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
HOSTILE = st.sampled_from([
    b"[" * 100_000, b'{"a":' * 10_000, b"\xff\xfe\x00", b"\xed\xa0\x80", b"NaN",
    b'{"order_id": "o", "amount_cents": 1e400}', b'{"n": 11}', b'{"n": "x"}',
    b"9" * 5000, b'{"url": 1}', b"", b" ", b"\x00" * 100,
    json.dumps({"order_id": "o1", "amount_cents": 250}).encode(),
])
PAYLOAD = st.one_of(
    st.none(), st.binary(max_size=300), HOSTILE,
    JSON.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"order_id": JSON, "amount_cents": JSON}).map(
        lambda v: json.dumps(v).encode()),
)
HEADER_VALUE = st.one_of(st.none(), st.binary(max_size=50), st.text(max_size=20))
HEADERS = st.one_of(
    st.none(),
    st.lists(st.tuples(st.text(max_size=20), HEADER_VALUE), max_size=6),
    st.dictionaries(st.text(max_size=20), HEADER_VALUE, max_size=6),
)
TIMESTAMP = st.one_of(
    st.floats(),  # NaN, infinities, and values far outside datetime's range
    st.integers(-(2**63), 2**63 - 1).map(lambda ms: ms / 1000),
    st.sampled_from([0.0, -1.0, 1_700_000_000.5, 253402300800.0, -62135596801.0]),
)


def event(key: bytes | None, value: bytes | None, headers: Any, timestamp: float) -> Any:
    record = SimpleNamespace(topic="orders", partition=1, offset=7, key=key, value=value,
                             timestamp=timestamp, headers=headers)
    return SimpleNamespace(message=record)


@settings(max_examples=400, deadline=None)
@given(key=PAYLOAD, value=PAYLOAD, headers=HEADERS, timestamp=TIMESTAMP,
       value_type=st.sampled_from(DECLARED), key_type=st.sampled_from(DECLARED))
def test_any_record_decodes_or_is_a_decode_error(key: bytes | None, value: bytes | None,
                                                 headers: Any, timestamp: float,
                                                 value_type: Any, key_type: Any) -> None:
    try:
        message = to_message(event(key, value, headers, timestamp), value_type, key_type)
    except DecodeError as exc:
        text = str(exc)
        assert text.startswith("orders[1]@7: "), text
        assert len(text) < 1000  # a reason for a header, not a dump of the record
        return
    assert isinstance(message, Message)
    assert message.raw_value == value and message.raw_key == key
    assert all(isinstance(k, str) and isinstance(v, bytes)
               for k, v in message.headers.items())


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(65, 200_000), opener=st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_a_decode_error_that_says_so(depth: int, opener: str) -> None:
    value = (opener * depth).encode()
    for declared in (None, dict, Order):
        try:
            to_message(event(b"k", value, [], 0.0), declared, str)
        except DecodeError as exc:
            assert "deeper than 64 levels" in str(exc)
        else:
            raise AssertionError(f"{depth} levels decoded as {declared}")
