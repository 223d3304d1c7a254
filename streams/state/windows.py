"""Windowed per-key tables for batch handlers: one value per key and time window.

A record counts in the windows that contain its Kafka timestamp (the time the producer
or broker gave the record, not the time it is processed), so a record with a known
timestamp always lands in a known window, however late it is read. Built on Faust's
windowed tables (`Table(..., window=TumblingWindow | HoppingWindow)`), RocksDB by default.

Example::

    orders_per_minute = WindowedTable("orders_per_customer_minute", value_type=int,
                                      default=int, window=Tumbling(60),
                                      expires=timedelta(hours=1))

    @batch_agent("orders", value_type=Order)
    async def count(batch: list[Message[Order]]) -> None:
        with orders_per_minute.batch() as windows:
            for message in batch:
                windows.update(message, message.key, lambda n: n + 1)

    orders_per_minute.current("customer-1")          # this minute's count
    orders_per_minute.range("customer-1", start, end)  # [WindowValue(start, end, value)]

Storage: a key is stored as its UTF-8 bytes, a zero byte, then the window's start and end
as order-preserving 8-byte floats. The key's own bytes come first, so the changelog and
lookups hash to the source record's partition, and RocksDB keeps each key's windows
together in time order: a range query is one seek and a short read.

Expiry: Faust drops a window once its end is more than `expires` older than the wall
clock, on its `table_cleanup_interval` timer (Faust setting, default 30 s). Faust only
tracks windows written by the running process (faust-streaming issue 385: windows
recovered from RocksDB or the changelog never expire), so after every recovery the
windows found locally are handed to the same tracker. The changelog topic is
`compact,delete` with `retention.ms` = `expires`, so Kafka drops old windows too.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, cast

import faust
from faust.windows import HoppingWindow, TumblingWindow

from streams._faust.codecs import register_codec
from streams._faust.events import event_scope
from streams._faust.store import partition_dbs, tune_for_point_lookups
from streams._faust.tables import track_window_expiry, tracked_window_keys
from streams.errors import TableError
from streams.processing.models import Message
from streams.state.placement import KeyPlacement
from streams.state.scan import active_partitions, decode_value, scan
from streams.state.tables import TableBatch, _store_url, bound_table

V = TypeVar("V")

Seconds = float | int | timedelta
#: A point in time: a datetime (naive ones are UTC) or epoch seconds.
Time = datetime | float | int

#: Windowed tables declared at import time of the deployment's modules, bound by `create_app`.
DECLARED_WINDOWED_TABLES: list[WindowedTable[Any]] = []


def seconds(value: Seconds) -> float:
    """A duration in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def epoch(value: Time) -> float:
    """Epoch seconds of a datetime (naive ones are taken as UTC) or of epoch seconds."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.timestamp()
    return float(value)


@dataclass(frozen=True)
class Tumbling:
    """Back-to-back windows of `size` seconds: each timestamp is in exactly one."""

    size: Seconds

    def __post_init__(self) -> None:
        _check_whole_seconds("window size", self.size)

    def faust_window(self, expires: float | None) -> Any:
        return TumblingWindow(seconds(self.size), expires=expires)

    def describe(self) -> dict[str, Any]:
        return {"type": "tumbling", "size_s": seconds(self.size)}


@dataclass(frozen=True)
class Hopping:
    """Windows of `size` seconds starting every `step` seconds: they overlap when
    step < size, so a timestamp is in about size/step windows."""

    size: Seconds
    step: Seconds

    def __post_init__(self) -> None:
        _check_whole_seconds("window size", self.size)
        _check_whole_seconds("window step", self.step)
        if seconds(self.step) > seconds(self.size):
            raise TableError(f"window step {seconds(self.step):g}s is larger than its size "
                             f"{seconds(self.size):g}s: time between windows would not count")

    def faust_window(self, expires: float | None) -> Any:
        return HoppingWindow(seconds(self.size), seconds(self.step), expires=expires)

    def describe(self) -> dict[str, Any]:
        return {"type": "hopping", "size_s": seconds(self.size), "step_s": seconds(self.step)}


WindowSpec = Tumbling | Hopping


def _check_whole_seconds(what: str, value: Seconds) -> None:
    # Faust's hopping arithmetic steps through int(start)..int(timestamp) by int(step).
    amount = seconds(value)
    if amount < 1 or amount != math.floor(amount):
        raise TableError(f"{what} must be a whole number of seconds, at least 1 (got {amount:g})")


@dataclass(frozen=True)
class WindowValue(Generic[V]):
    """One window of one key: [start, end) in epoch seconds, and the value in it.

    Faust's own window keys end 0.1 s early (start + size - 0.1) so that they do not
    overlap; here the end is exclusive: start + size. `start_time`/`end_time` are the same
    bounds as UTC datetimes."""

    start: float
    end: float
    value: V

    @property
    def start_time(self) -> datetime:
        return datetime.fromtimestamp(self.start, tz=UTC)

    @property
    def end_time(self) -> datetime:
        return datetime.fromtimestamp(self.end, tz=UTC)

    def as_dict(self, to_json: Callable[[Any], Any] = lambda v: v) -> dict[str, Any]:
        """The JSON form: bounds in ISO 8601, and as epoch seconds in `*_epoch`."""
        return {"window_start": iso(self.start), "window_end": iso(self.end),
                "window_start_epoch": self.start, "window_end_epoch": self.end,
                "value": to_json(self.value)}


def iso(seconds_since_epoch: float) -> str:
    """ISO 8601 in UTC, the form every JSON answer gives times in."""
    return datetime.fromtimestamp(seconds_since_epoch, tz=UTC).isoformat()


# --- key encoding -----------------------------------------------------------------------

WINDOW_KEY_CODEC = "streams_window_key"
_SUFFIX = 17  # b"\0" + start + end


def ordered_float(value: float) -> bytes:
    """8 bytes whose byte order is the numeric order of the floats."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", value))
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | 1 << 63
    return struct.pack(">Q", bits)


def unordered_float(data: bytes) -> float:
    (bits,) = struct.unpack(">Q", data)
    bits = bits ^ 1 << 63 if bits >> 63 else bits ^ 0xFFFF_FFFF_FFFF_FFFF
    (value,) = struct.unpack(">d", struct.pack(">Q", bits))
    return float(value)


def encode_window_key(key: str, start: float | None = None, end: float | None = None) -> bytes:
    """The stored form of (key, (start, end)); the key alone without a window."""
    raw = key.encode()
    if start is None:
        return raw
    return raw + b"\0" + ordered_float(start) + ordered_float(start if end is None else end)


def decode_window_key(data: bytes) -> tuple[str, tuple[float, float]]:
    if len(data) < _SUFFIX or data[-_SUFFIX] != 0:
        raise ValueError(f"{data!r} is not a windowed table key")
    start = unordered_float(data[-16:-8])
    end = unordered_float(data[-8:])
    return data[:-_SUFFIX].decode(), (start, end)


def dump_window_key(obj: str | tuple[str, tuple[float, float]]) -> bytes:
    """The window-key codec's encoder: `(key, (start, end))`, or a plain str for the key
    alone. The key alone is what Faust's router serializes to find the partition (and so
    the worker) that owns a key, and it must hash like the source record's raw key."""
    if isinstance(obj, str):
        return encode_window_key(obj)
    key, (start, end) = obj
    return encode_window_key(key, start, end)


def register_window_key_codec() -> None:
    """Register the codec of windowed keys in Faust's codec registry (when a windowed
    table is bound to an app, not at import)."""
    register_codec(WINDOW_KEY_CODEC, dump_window_key, decode_window_key)


# --- the table --------------------------------------------------------------------------

@dataclass(eq=False)
class WindowedTable(KeyPlacement, Generic[V]):
    """A windowed per-key table declared by a deployment; bound to the Faust app at start.

    Keys are str (the source records' keys). `window` is `Tumbling(size)` or
    `Hopping(size, step)` (seconds or timedelta); `expires` is how long a window is kept
    after it ends (None keeps windows forever). `value_type`/`default` as for
    `PerKeyTable`; `store="memory"` keeps the table in memory only (tests). `source` as
    for `PerKeyTable`: the topic whose key partitioner places the keys.
    """

    name: str
    value_type: type[V]
    default: Callable[[], V]
    window: WindowSpec
    expires: Seconds | None = None
    partitions: int | None = None
    store: str | None = None
    help: str = ""
    register: bool = True
    source: str | None = None
    key_type: type[Any] = field(default=str, init=False)
    _table: Any = field(default=None, init=False, repr=False)
    _partitioner: str = field(default="murmur2", init=False, repr=False)
    _place: Callable[[bytes], int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.expires is not None and seconds(self.expires) <= 0:
            raise TableError(f"table {self.name!r}: expires must be positive "
                             f"(got {seconds(self.expires):g}s)")
        if self.register:
            DECLARED_WINDOWED_TABLES.append(self)

    @property
    def expires_s(self) -> float | None:
        return None if self.expires is None else seconds(self.expires)

    @property
    def size_s(self) -> float:
        return seconds(self.window.size)

    def bind(self, app: faust.App, *, default_store: str, partitions: int,
             key_partitioner: str = "murmur2") -> None:
        """Create the Faust windowed table on `app` (called by `create_app`); its keys are
        placed with `key_partitioner`."""
        self._partitioner = key_partitioner
        self._place = None
        store = self.store or default_store
        expires = self.expires_s
        windowed: Any = app.Table(  # Faust's .tumbling()/.hopping() wrapper
            self.name,
            default=self.default,
            value_type=self.value_type,
            partitions=self.partitions or partitions,
            store=_store_url(store),
            options={"driver": "rocksdict"} if store == "rocksdb" else None,
            help=self.help,
            window=self.window.faust_window(expires),
            on_recover=self._track_recovered_windows,
        )
        table = windowed.table
        register_window_key_codec()
        table.key_serializer = WINDOW_KEY_CODEC
        # The changelog topic was made by app.Table() before the window was set; it is
        # changed in place (Topic.derive would lose its acks=False).
        changelog = table.changelog_topic
        changelog.key_serializer = WINDOW_KEY_CODEC
        if changelog.schema is not None:
            changelog.schema.key_serializer = WINDOW_KEY_CODEC
        if expires:
            # compact,delete with retention.ms = expires: Kafka drops windows Faust expired
            # (Faust removes them from RocksDB only). Segments roll as often, else retention
            # waits for the broker's default week-long segments.
            changelog.retention = expires
            changelog.deleting = True
            changelog.config = {**(changelog.config or {}),
                                "segment.ms": str(int(expires * 1000))}
        tune_for_point_lookups(table.data)  # each new window of a key is read before set
        self._table = table

    @property
    def faust_table(self) -> Any:
        """The underlying Faust table (its keys are `(key, (start, end))`)."""
        return bound_table(self.name, self._table)

    def placement_key(self, key: str | tuple[str, Any]) -> bytes:
        """The bytes the partitioner hashes: the key's, whatever the window."""
        return (key if isinstance(key, str) else key[0]).encode()

    def windows_at(self, timestamp: Time) -> list[tuple[float, float]]:
        """The windows (Faust's `(start, end)`, epoch seconds) a record with this timestamp
        (a datetime or epoch seconds) counts in."""
        return [(float(start), float(end))
                for start, end in self.faust_table.window.ranges(epoch(timestamp))]

    def current(self, key: str, now: Time | None = None) -> WindowValue[V] | None:
        """The latest window containing `now` (a datetime or epoch seconds; default: the
        wall clock), if `key` has a value in it; None otherwise."""
        at = datetime.now(tz=UTC).timestamp() if now is None else epoch(now)
        start, end = self.faust_table.window.current(at)
        value = self.get((key, (float(start), float(end))))
        return None if value is None else self._window_value(float(start), value)

    def range(self, key: str, start: Time, end: Time) -> list[WindowValue[V]]:
        """The stored windows of `key` that overlap [start, end], oldest first.

        `start` and `end` are datetimes (naive ones are UTC) or epoch seconds; they may be
        infinite floats for an open range. Only this worker's partitions are read: a key
        owned by another worker has no windows here (the HTTP lookup is routed to it).
        Raises `TableError` when `end` is before `start`.
        """
        start, end = epoch(start), epoch(end)
        if end < start:
            raise TableError(f"range end {iso(end)} is before its start {iso(start)}")
        table = self.faust_table
        prefix = encode_window_key(key) + b"\0"
        seek = encode_window_key(key, start - self.size_s)
        found: list[WindowValue[V]] = []
        for raw_key, raw_value in scan(table, seek, partitions=self._partitions_for(key)):
            if not raw_key.startswith(prefix):
                break
            _, (window_start, _) = decode_window_key(raw_key)
            if window_start > end:
                break
            if window_start + self.size_s > start:
                found.append(self._window_value(window_start, decode_value(table, raw_value)))
        return found

    def batch(self) -> WindowBatch[V]:
        """Collect a batch's updates; they are written when the `with` block ends cleanly."""
        return WindowBatch(self)

    def get(self, slot: tuple[str, tuple[float, float]]) -> V | None:
        """The stored value of `(key, (start, end))`, a window as `windows_at` gives it
        (Faust's end, 0.1 s before the next window), on this worker; None if it has none."""
        table = self.faust_table
        if slot not in table:
            return None
        return table[slot]  # type: ignore[no-any-return]

    def _window_value(self, start: float, value: V) -> WindowValue[V]:
        return WindowValue(start=start, end=start + self.size_s, value=value)

    def _partitions_for(self, key: str) -> list[int] | None:
        if partition_dbs(self.faust_table.data) is None:
            return None  # in-memory store: one unpartitioned map
        partition = self.partition_of(key)
        return [partition] if partition in active_partitions(self.faust_table) else []

    async def _track_recovered_windows(self) -> None:
        """Let Faust's expiry timer see the windows recovered into this worker.

        Runs after every recovery (each rebalance); windows already tracked are skipped.
        """
        table = self.faust_table
        if self.expires is None:
            return
        for partition in active_partitions(table):
            for count, (raw_key, _) in enumerate(scan(table, partitions=[partition]), 1):
                key = decode_window_key(raw_key)
                if key not in tracked_window_keys(table, partition, key[1][1]):
                    track_window_expiry(table, [(key, partition)])
                if count % 10_000 == 0:
                    await asyncio.sleep(0)  # a large table: let the worker breathe


class WindowBatch(TableBatch[V]):
    """The pending window updates of one batch, coalesced per (key, window).

    A `TableBatch` whose keys are `(key, window)` pairs: writes are checked and flushed the
    same way, each to the changelog partition of the record it came from.
    """

    def __init__(self, table: WindowedTable[V]) -> None:
        # WindowedTable offers what TableBatch uses: name, source, faust_table, get,
        # default, key_partitioner, partition_count, and placement_key and partition_of,
        # here of (key, window) pairs.
        super().__init__(table)  # type: ignore[arg-type]

    def _stored(self, key: Any) -> V | None:
        return self._table.get(key)

    def _cache(self) -> None:
        return None  # windows are read through Faust's windowed table

    def update(self, message: Message[Any], key: Any, change: Callable[[V], V]) -> V:
        """Apply `change` to `key`'s value in every window containing the record's time;
        return the value of the latest of them.

        As with `PerKeyTable`, the key must hash to the partition the record came from
        (else `TableError`, and the record goes to the dead-letter topic).
        """
        windows = self._windowed.windows_at(message.timestamp.timestamp())
        value: V | None = None
        for window in windows:
            slot = (key, window)
            with event_scope(message.event):  # Faust reads the current event's partition
                value = change(self.get(slot))
            self.set(message, slot, value)
        return cast(V, value)

    @property
    def _windowed(self) -> WindowedTable[V]:
        return cast(WindowedTable[V], self._table)
