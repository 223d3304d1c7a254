"""Platform models: the `Message` a handler receives, and the transform that builds it.

`MessageDecoder` is the seed's `transformMessage` + `transformMessageHeaders`: Kafka's record
coordinates are kept as they are, the key and value are decoded into the declared types,
and headers become a mapping of str to bytes. A record that cannot be decoded raises
`DecodeError` naming its coordinates, so the caller can dead-letter it instead of crashing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import faust
import msgspec

from streams import strict_json
from streams._faust.models import record_fields
from streams.errors import DecodeError

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Message(Generic[T]):
    """One Kafka record, decoded.

    `timestamp` is the record's timestamp in UTC; `headers` maps header names to their raw
    bytes (a repeated header keeps its last value, as in the seed's transform).
    `raw_key`/`raw_value` are the bytes as they were on the topic (used for dead letters).
    """

    topic: str
    partition: int
    offset: int
    key: Any
    value: T
    timestamp: datetime
    headers: Mapping[str, bytes] = field(default_factory=dict)
    raw_key: bytes | None = field(default=None, repr=False, compare=False)
    raw_value: bytes | None = field(default=None, repr=False, compare=False)
    # The Faust event this message came from: table writes made for this message go to
    # the changelog partition of its record (see streams.state.tables).
    event: Any = field(default=None, repr=False, compare=False)

    @property
    def coordinates(self) -> str:
        """`topic[partition]@offset`, for logs and errors."""
        return f"{self.topic}[{self.partition}]@{self.offset}"


def _message_factory() -> Callable[..., Message[Any]]:
    """`Message(*fields)` at a third of the cost, for the one place that builds a message
    per record.

    A frozen dataclass's `__init__` sets each field through `object.__setattr__` by name
    (1.5 µs for a `Message`); this sets the slots through their descriptors. Every field
    is given, in declaration order, so the result is the same as `Message(...)`'s.
    """
    setters = [getattr(Message, f.name).__set__ for f in dataclasses.fields(Message)]
    (set_topic, set_partition, set_offset, set_key, set_value, set_timestamp, set_headers,
     set_raw_key, set_raw_value, set_event) = setters
    new = object.__new__

    def new_message(topic: str, partition: int, offset: int, key: Any, value: Any,
                    timestamp: datetime, headers: Mapping[str, bytes], raw_key: bytes | None,
                    raw_value: bytes | None, event: Any) -> Message[Any]:
        message: Message[Any] = new(Message)
        set_topic(message, topic)
        set_partition(message, partition)
        set_offset(message, offset)
        set_key(message, key)
        set_value(message, value)
        set_timestamp(message, timestamp)
        set_headers(message, headers)
        set_raw_key(message, raw_key)
        set_raw_value(message, raw_value)
        set_event(message, event)
        return message

    return new_message


_new_message = _message_factory()


def transform_headers(headers: Iterable[tuple[str, bytes | None]] | Mapping[str, Any] | None,
                      ) -> dict[str, bytes]:
    """Kafka headers (a list of pairs, or Faust's mapping) as `{name: bytes}`."""
    if not headers:
        return {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    result: dict[str, bytes] = {}
    for name, value in pairs:
        if isinstance(value, str):
            value = value.encode()
        result[str(name)] = b"" if value is None else bytes(value)
    return result


def decode(raw: bytes | None, declared: type[Any] | None, what: str) -> Any:
    """Decode raw bytes into `declared`: bytes, str, a msgspec Struct, a Faust Record, a
    dataclass, or JSON.

    `None` (or `object`) as the declared type means JSON when the bytes are JSON-looking
    text, else the bytes unchanged. Raises `ValueError` saying what went wrong.

    A `msgspec.Struct` is the fast path: msgspec parses and validates the JSON in C, in
    one step, by the Struct's own rules (unknown fields are ignored unless the Struct says
    `forbid_unknown_fields=True`).
    """
    if raw is None:
        return None
    if declared is bytes:
        return raw
    struct_decoder = _struct_decoder(declared)
    if struct_decoder is not None:
        try:
            return struct_decoder.decode(raw)
        except msgspec.DecodeError as exc:  # ValidationError included
            raise ValueError(f"{what} does not fit {struct_decoder.type.__name__}: {exc}"
                             ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} is not UTF-8 text: {exc}") from None
    if declared is str:
        return text
    if declared is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{what} {text[:40]!r} is not an integer") from None
    try:
        # bounded nesting: json would recurse once per level, into RecursionError
        data = strict_json.loads(text, allow_nan=True)
    except json.JSONDecodeError as exc:
        if declared in (None, object):
            return raw
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    if declared in (None, object, dict, Any):
        return data
    return _build(declared, data, what)


def decoder_for(declared: type[Any] | None, what: str) -> Callable[[bytes | None], Any]:
    """`decode` for `declared`, with the checks of the declared type made once: bytes,
    str and msgspec Structs get a decoder of their own (the fast path), other types
    `decode` itself."""
    if declared is bytes:
        return _unchanged
    if declared is str:
        def text(raw: bytes | None) -> str | None:
            if raw is None:
                return None
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{what} is not UTF-8 text: {exc}") from None

        return text
    struct_decoder = _struct_decoder(declared)
    if struct_decoder is not None:
        decode_struct = struct_decoder.decode
        name = struct_decoder.type.__name__

        def struct(raw: bytes | None) -> Any:
            if raw is None:
                return None
            try:
                return decode_struct(raw)
            except msgspec.DecodeError as exc:  # ValidationError included
                raise ValueError(f"{what} does not fit {name}: {exc}") from None

        return struct
    return functools.partial(decode, declared=declared, what=what)


def _unchanged(raw: bytes | None) -> bytes | None:
    return raw


def check_decodable(declared: type[Any] | None, what: str) -> None:
    """Raise `TypeError` now if records can never be decoded into `declared`.

    Called when an agent is declared, so a wrong type stops the deployment at start instead
    of dead-lettering every record.
    """
    if declared in (None, object, dict, Any, bytes, str, int):
        return
    if isinstance(declared, type) and (issubclass(declared, msgspec.Struct)
                                       or issubclass(declared, faust.Record)
                                       or dataclasses.is_dataclass(declared)):
        return
    raise TypeError(f"cannot decode a {what} into {declared!r}: use bytes, str, int, dict, "
                    "a msgspec.Struct, a faust.Record or a dataclass")


_STRUCT_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _struct_decoder(declared: Any) -> msgspec.json.Decoder[Any] | None:
    """The (cached) JSON decoder of `declared` if it is a msgspec Struct, else None."""
    decoder = _STRUCT_DECODERS.get(declared)
    if decoder is None and isinstance(declared, type) and issubclass(declared, msgspec.Struct):
        decoder = _STRUCT_DECODERS[declared] = msgspec.json.Decoder(declared)
    return decoder


def _build(declared: type[Any], data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object for {declared.__name__}, "
                         f"got {type(data).__name__}")
    if isinstance(declared, type) and issubclass(declared, faust.Record):
        names = record_fields(declared)
        _check_fields(declared, data, names, what)
        try:
            instance = declared.from_data(data)
            instance.validate_or_raise()
        except Exception as exc:
            raise ValueError(f"{what} does not fit {declared.__name__}: {exc}") from None
        return instance
    if dataclasses.is_dataclass(declared):
        names = {f.name for f in dataclasses.fields(declared)}
        _check_fields(declared, data, names, what)
        try:
            return declared(**data)
        except TypeError as exc:
            raise ValueError(f"{what} does not fit {declared.__name__}: {exc}") from None
    raise TypeError(f"cannot decode into {declared!r}: use bytes, str, int, dict, "
                    "a msgspec.Struct, a faust.Record or a dataclass")


def _check_fields(declared: type[Any], data: dict[str, Any], names: set[str], what: str) -> None:
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{what} has fields {unknown} that {declared.__name__} does not know")


class MessageDecoder(Generic[T]):
    """Turns Faust events of a raw-bytes topic into platform `Message`s, decoding keys
    into `key_type` and values into `value_type` (see `decode`).

    The decoders are chosen once, not per record (`decoder_for`). Raises `DecodeError`
    with the record's coordinates when the key or value don't decode.
    """

    def __init__(self, value_type: type[T] | None, key_type: type[Any] | None = str) -> None:
        self._decode_key = decoder_for(key_type, "key")
        self._decode_value = decoder_for(value_type, "value")
        # the last record's timestamp and its datetime (see decode_all)
        self._last_time: tuple[float | None, datetime | None] = (None, None)

    def __call__(self, event: Any) -> Message[T]:
        messages, failed = self.decode_all((event,))
        if failed:
            raise failed[0][1]
        return messages[0]

    def decode_all(self, events: Iterable[Any],
                   ) -> tuple[list[Message[T]], list[tuple[Any, DecodeError]]]:
        """The `Message` of each of `events` that decodes, in order, and each event that
        does not with its `DecodeError`: one loop for a batch."""
        messages: list[Message[T]] = []
        failed: list[tuple[Any, DecodeError]] = []
        append = messages.append
        decode_key, decode_value, new_message = self._decode_key, self._decode_value, _new_message
        # records produced together often share their millisecond, and a datetime is
        # immutable: consecutive records with the same timestamp share it
        last_stamp, last_time = self._last_time
        for event in events:
            record = event.message
            # Whatever the record's bytes, headers or timestamp hold must end as a dead
            # letter, never as an exception that stops the agent: a record that stops the
            # agent is never committed, so every worker that takes the partition over
            # would stop on it too (a crash loop). Hence any Exception, not only
            # ValueError: RecursionError from deeply nested JSON, OverflowError from a
            # timestamp out of datetime's range, MemoryError from a huge value, whatever
            # a Record's own validation raises.
            try:
                key = decode_key(record.key)
                value = decode_value(record.value)
                stamp = record.timestamp
                if stamp != last_stamp:
                    last_time = _record_time(stamp)
                    last_stamp = stamp
                headers = record.headers
                headers = transform_headers(headers) if headers else {}
            except Exception as exc:  # noqa: BLE001 - see above
                failed.append((event, _decode_error(record, exc)))
                continue
            append(new_message(record.topic, record.partition, record.offset, key, value,
                               last_time, headers, record.key, record.value, event))
        self._last_time = (last_stamp, last_time)
        return messages, failed


def _decode_error(record: Any, exc: Exception) -> DecodeError:
    if isinstance(exc, ValueError):
        return DecodeError(f"{_coordinates(record)}: {exc}")
    return DecodeError(f"{_coordinates(record)}: cannot decode the record: "
                       f"{type(exc).__name__}: {_shorten(str(exc))}")


def to_message(event: Any, value_type: type[T] | None, key_type: type[Any] | None = str,
               ) -> Message[T]:
    """Turn a Faust event of a raw-bytes topic into a platform `Message` (one-off use of
    `MessageDecoder`)."""
    return MessageDecoder(value_type, key_type)(event)


def _coordinates(record: Any) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def _record_time(timestamp: float) -> datetime:
    try:
        return datetime.fromtimestamp(timestamp, UTC)  # positional: half the cost of tz=
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"record timestamp {timestamp!r} is not a valid time: {exc}") from None


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
