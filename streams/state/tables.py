"""Per-key tables for batch handlers, on Faust tables backed by RocksDB (rocksdict).

Faust only lets a table be written while a stream is on an event: the write goes to the
changelog partition of that event's record, and RocksDB keeps one database per partition.
A batch handler has many records at once and none "current", so a plain `table[k] = v`
fails with "Cannot modify table key from outside of stream iteration".

`PerKeyTable.batch()` is the supported way: it collects the handler's updates, coalescing
repeated updates of a key, and when the block ends hands each key's last value to the
batch's pending writes (streams.state.writes), marked with the partition of the last
record that touched it. After the handler returned, the agent writes them to the
changelog, waits for the acknowledgements, writes RocksDB, and only then acknowledges the
records. A handler call that raises writes nothing: a retried call starts from the same
state.

Example::

    customer_totals = PerKeyTable("customer_totals", value_type=CustomerTotals,
                                  default=CustomerTotals)

    @batch_agent("orders", value_type=Order)
    async def count_orders(batch: list[Message[Order]]) -> None:
        with customer_totals.batch() as totals:
            for message in batch:
                current = totals.get(message.key)
                totals.set(message, message.key, current.add(message.value.amount))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import faust

from streams._faust.store import (
    encode_key,
    read_local,
    read_partition,
    tune_for_point_lookups,
)
from streams.errors import TableError
from streams.processing.models import Message
from streams.state import writes as table_writes
from streams.state.cache import Entry, ValueCache
from streams.state.placement import KeyPlacement, misplaced_key

V = TypeVar("V")

#: Tables declared at import time of the deployment's modules, bound by `create_app`.
DECLARED_TABLES: list[PerKeyTable[Any]] = []


@dataclass(eq=False)
class PerKeyTable(KeyPlacement, Generic[V]):
    """A per-key table declared by a deployment; bound to the Faust app at start.

    `value_type` is a msgspec.Struct (the fast path: encoded and decoded in C), a
    faust.Record, or int/float/str; `default` makes the value of a key
    never seen (a callable with no arguments, like the Record class itself).
    `store="memory"` keeps the table in memory only (tests); the default is RocksDB.
    `source` names the topic the table is partitioned like (whose KEY_PARTITIONER places
    its keys); by default the topics the app's agents read (see streams.state.placement).
    """

    name: str
    value_type: type[V]
    default: Callable[[], V]
    key_type: type[Any] = str
    partitions: int | None = None
    store: str | None = None
    help: str = ""
    register: bool = True
    source: str | None = None
    _table: Any = field(default=None, init=False, repr=False)
    _partitioner: str = field(default="murmur2", init=False, repr=False)
    _place: Callable[[bytes], int] | None = field(default=None, init=False, repr=False)
    value_cache: ValueCache = field(default_factory=lambda: ValueCache(0), init=False,
                                    repr=False)

    def __post_init__(self) -> None:
        if self.register:
            DECLARED_TABLES.append(self)

    def bind(self, app: faust.App, *, default_store: str, partitions: int,
             key_partitioner: str = "murmur2") -> None:
        """Create the Faust table on `app` (called by `create_app`); its keys are placed
        with `key_partitioner` (see streams.kafka.partitioner)."""
        self._partitioner = key_partitioner
        self._place = None
        store = self.store or default_store
        self._table = app.Table(
            self.name,
            default=self.default,
            key_type=self.key_type,
            value_type=self.value_type,
            partitions=self.partitions or partitions,
            store=_store_url(store),
            options={"driver": "rocksdict"} if store == "rocksdb" else None,
            help=self.help,
        )
        settings = getattr(app, "platform_settings", None)
        self.value_cache = ValueCache(settings.table_cache_size if settings is not None else 0)
        app.on_partitions_revoked.connect(self._forget_cached)
        app.on_partitions_assigned.connect(self._forget_cached)
        if self.key_type is str:
            # Changelog and RocksDB keys are the source record's key bytes (plain UTF-8,
            # not Faust's default JSON with quotes), so a key hashes to the same partition
            # in the source topic, the changelog and Faust's lookup routing. The store is
            # created lazily from `key_serializer`; the changelog topic already exists and
            # is changed in place (Topic.derive would lose its acks=False).
            self._table.key_serializer = "raw"
            changelog = self._table.changelog_topic
            changelog.key_serializer = "raw"
            if changelog.schema is not None:  # the table's own Schema, not a shared one
                changelog.schema.key_serializer = "raw"
        tune_for_point_lookups(self._table.data)

    @property
    def faust_table(self) -> Any:
        """The underlying Faust table (for views and advanced use)."""
        return bound_table(self.name, self._table)

    def get(self, key: Any) -> V | None:
        """The stored value of `key` on this worker, or None if it has none.

        Reads what earlier batches wrote, including changes handled but not committed to
        the changelog and store yet (`COMMIT_INTERVAL_MS`); not the pending updates of a
        running batch: use `TableBatch.get` inside a handler. Only this worker's partitions
        are read; the HTTP lookup `GET /api/tables/{table}/{key}` is routed to the worker
        owning the key.
        """
        store = self.faust_table.data
        key_bytes = encode_key(store, key)
        change = table_writes.latest_change(self.faust_table, key_bytes)
        if change is not None:
            return change.value  # type: ignore[no-any-return]
        return read_local(store, self.partition_of(key), key,  # type: ignore[no-any-return]
                          key_bytes)

    def stored(self, key: Any) -> Entry:
        """(The stored value of `key` or None, its partition), from the cache if there.

        The value is read from the key's own partition database only.
        """
        entry = self.value_cache.get(key)
        if entry is None:
            store = self.faust_table.data
            partition = self.partition_of(key)
            entry = (read_partition(store, partition, key, encode_key(store, key)), partition)
            self.value_cache.put(key, *entry)
        return entry

    async def _forget_cached(self, *_: Any, **__: Any) -> None:
        """The worker's partitions change: other partitions, replayed changelogs."""
        self.value_cache.forget()

    def placement_key(self, key: Any) -> bytes:
        """The bytes the partitioner hashes for `key`: the source record's key bytes
        (a str key of a str-keyed table: its UTF-8, as the raw serializer set at binding
        encodes it)."""
        if type(key) is str and self.key_type is str:
            return key.encode()
        return bytes(self.faust_table.changelog_topic.prepare_key(key, None)[0])

    def batch(self) -> TableBatch[V]:
        """Collect a batch's updates; they are written when the `with` block ends cleanly."""
        return TableBatch(self)


def bound_table(name: str, table: Any | None) -> Any:
    """`table`, the Faust table of platform table `name`, or a TableError saying how to
    bind it if it is not bound yet."""
    if table is None:
        raise TableError(f"table {name!r} is not bound to an app yet: "
                         "pass it to create_app() or declare it in tables/")
    return table


class TableBatch(Generic[V]):
    """The pending updates of one block: reads see them, the batch gets them at the end."""

    def __init__(self, table: PerKeyTable[V]) -> None:
        self._table = table
        self._pending: dict[Any, tuple[V, int]] = {}
        self._faust_table = table.faust_table  # looked up once: read for every key
        self._store = self._faust_table.data

    def __enter__(self) -> TableBatch[V]:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.flush()
        self._pending.clear()

    def get(self, key: Any) -> V:
        """The value of `key` as this batch sees it: its own pending update, else what an
        earlier handler call of the same batch wrote, else the stored value, else the
        table's default. Call it before `set`/`update` to keep the value before a change."""
        pending = self._pending.get(key)
        if pending is not None:
            return pending[0]
        writes = table_writes.current()
        if writes is not None:  # changes of an earlier block, or of the batch in flight
            change = writes.get(self._faust_table, encode_key(self._store, key))
            if change is not None:
                return change.value  # type: ignore[no-any-return]
        stored = self._stored(key)
        return self._table.default() if stored is None else stored

    def _stored(self, key: Any) -> V | None:
        return self._table.stored(key)[0]  # type: ignore[no-any-return]

    def _cache(self) -> ValueCache | None:
        """Where stored values of this block's table are kept (None: nowhere)."""
        return self._table.value_cache

    def set(self, message: Message[Any], key: Any, value: V) -> None:
        """Set `key` to `value` because of `message` (its partition gets the change).

        The key must belong to the partition the message came from, as the table's key
        partitioner places it: lookups are routed to the worker owning that partition,
        and a key stored elsewhere could never be found. A message keyed otherwise (or not
        at all, or by a producer partitioning differently) raises `KeyPlacementError`, so
        the record ends up in the dead-letter topic with the reason and the partitioner
        its placement matches, instead of silently corrupting the table.
        """
        table = self._table
        cache = self._cache()
        entry = None if cache is None else cache.get(key)
        expected = table.partition_of(key) if entry is None else entry[1]
        if expected != message.partition:
            raise misplaced_key(message, key, table.name, table.placement_key(key), expected,
                                table.partition_count, table.key_partitioner, table.source)
        self._pending[key] = (value, message.partition)

    def update(self, message: Message[Any], key: Any, change: Callable[[V], V]) -> V:
        """Set `key` to `change(value)`, the value as `get(key)` gives it; return the new
        value. The same rules as `set` apply (`TableError` for a key of another partition).

        Example::

            before = totals.get(message.key)
            after = totals.update(message, message.key, lambda t: t + message.value.cents)
        """
        value = change(self.get(key))
        self.set(message, key, value)
        return value

    def __len__(self) -> int:
        """The number of keys with a pending update."""
        return len(self._pending)

    def flush(self) -> None:
        """Hand every pending key, once, to the batch's writes (see streams.state.writes)."""
        writes = table_writes.current()
        if writes is None:
            raise TableError(f"table {self._table.name!r} was changed outside a batch "
                             "handler: use table.batch() inside a @batch_agent handler")
        table, store = self._faust_table, self._store
        cache = self._cache()
        for key, (value, partition) in self._pending.items():
            writes.put(table_writes.Change(table, partition, key, value,
                                           encode_key(store, key), cache=cache))
        self._pending.clear()


def _store_url(store: str) -> str:
    if store == "rocksdb":
        return "rocksdb://"
    if store == "memory":
        return "memory://"
    raise TableError(f"unknown table store {store!r}: use 'rocksdb' or 'memory'")
