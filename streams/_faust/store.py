"""Faust's table stores: the encoded forms of keys and values, and writes and reads that
go straight to the per-partition RocksDB databases."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, cast

import msgspec
from faust.stores.base import Store
from faust.stores.memory import Store as MemoryStore
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as RocksDBStore

#: The memtable's whole-key bloom filter, as a fraction of its write buffer (Faust's
#: 64 MiB): 671 KiB, 8 bits a key for a memtable full of 100-byte entries.
MEMTABLE_BLOOM_RATIO = 0.01


class RawIterator(Protocol):
    """A rocksdict `RdictIter` over raw keys and values."""

    def seek(self, key: bytes) -> None: ...

    def valid(self) -> bool: ...

    def key(self) -> bytes: ...

    def value(self) -> bytes: ...

    def next(self) -> None: ...


class RawDB(Protocol):
    """A rocksdict `Rdict` in raw mode, as Faust's RocksDB store opens one per partition."""

    def iter(self) -> RawIterator: ...


class ChangelogRecord(Protocol):
    """A changelog record as consumed (aiokafka's `ConsumerRecord`): raw key and value,
    None for a deleted key."""

    @property
    def key(self) -> bytes: ...

    @property
    def value(self) -> bytes | None: ...


class RawWrite(Protocol):
    """One key's new value for a table partition, decoded and encoded."""

    @property
    def partition(self) -> int: ...

    @property
    def key(self) -> Any: ...

    @property
    def value(self) -> Any: ...

    @property
    def key_bytes(self) -> bytes: ...

    @property
    def value_bytes(self) -> bytes | None:
        """The value encoded (set by the time it is written)."""


def encode_key(store: Store, key: Any) -> bytes:
    """`key` as the store and the changelog hold it.

    A str key of a table whose key type is str is its UTF-8 bytes: Faust's serializer
    registry picks the raw codec for `typ=str` whatever the table's key serializer
    (`Registry._serializer`), and the raw codec encodes str as UTF-8. Taken directly, as
    this runs for every key a handler reads or writes.
    """
    if type(key) is str and store.key_type is str:
        return key.encode()
    return store._encode_key(key)


def encode_value(store: Store, value: Any) -> bytes:
    """`value` as the store and the changelog hold it.

    A msgspec Struct (a table whose value type is one) is JSON encoded by msgspec, in C;
    Faust's serializers know only their own models and JSON data.
    """
    if isinstance(value, msgspec.Struct):
        return _STRUCT_JSON.encode(value)
    return cast(bytes, store._encode_value(value))


def decode_key(store: Store, key: bytes) -> Any:
    """A stored key, decoded with the table's key serializer."""
    return store._decode_key(key)


def decode_value(store: Store, value: bytes) -> Any:
    """A stored value, decoded with the table's value type (a msgspec Struct by msgspec)."""
    struct_type = struct_value_type(store)
    if struct_type is not None:
        return msgspec.json.decode(value, type=struct_type)
    return store._decode_value(value)


def struct_value_type(store: Store) -> type[msgspec.Struct] | None:
    """The table's value type if it is a msgspec Struct."""
    value_type = store.value_type
    if isinstance(value_type, type) and issubclass(value_type, msgspec.Struct):
        return value_type
    return None


_STRUCT_JSON = msgspec.json.Encoder()


class PointLookupOptions(RocksDBOptions):
    """Faust's rocksdict options, with a whole-key bloom filter on the memtable.

    A batch handler reads each key before it sets it, and a key never seen before is in
    no database: without the filter, RocksDB searched the memtable's skiplist for it
    (1.4 µs against 0.3 µs with the filter, for 60,000 keys). Faust sets a bloom filter
    for the files on disk only.
    """

    def as_options(self) -> Any:
        options = super().as_options()
        if self.use_rocksdict:
            options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO)
            options.set_memtable_whole_key_filtering(True)
        return options


def tune_for_point_lookups(store: Store) -> None:
    """Open `store`'s RocksDB databases with `PointLookupOptions` (before any is open:
    a table's store is created when it is bound). Other stores are left alone."""
    if isinstance(store, RocksDBStore) and store.use_rocksdict and not partition_dbs(store):
        store.rocksdb_options = PointLookupOptions(**(store.options or {}),
                                                   use_rocksdict=True)


def partition_dbs(store: Store) -> Mapping[int, RawDB] | None:
    """The open RocksDB database of each partition; None for a store without them."""
    return getattr(store, "_dbs", None)


def write(store: Store, writes: Iterable[RawWrite]) -> None:
    """Write to the store the way Faust's changelog recovery does (faust/stores/rocksdb.py
    `apply_changelog_batch`): one raw-mode write batch per partition database. Faust's key
    index (which partition database holds a key) is left alone, as that recovery leaves
    it: it is a cache Faust fills on a miss by looking in each database, and our reads go
    to the partition's database directly. Setting it (a lock and an LRU move per key) was
    4% of a stateful job. The in-memory store keeps objects, and the partition of each key
    for its cleanup on revoke."""
    if not isinstance(store, RocksDBStore):
        memory = cast(MemoryStore, store)
        for change in writes:
            memory.data[change.key] = change.value
            memory._key_partition[change.key] = change.partition
        return
    import rocksdict

    batches: dict[int, Any] = {}
    for change in writes:
        batch = batches.get(change.partition)
        if batch is None:
            batch = batches[change.partition] = rocksdict.WriteBatch(raw_mode=True)
        batch.put(change.key_bytes, change.value_bytes)
    for partition, batch in batches.items():
        store._db_for_partition(partition).write(batch)


def read_local(store: Store, partition: int, key: Any, key_bytes: bytes) -> Any:
    """As `read_partition`, but None if this worker has no database of `partition` (it
    does not open one)."""
    dbs = partition_dbs(store)
    if dbs is not None and partition not in dbs:
        return None
    return read_partition(store, partition, key, key_bytes)


def is_rocksdb(store: Store) -> bool:
    """Whether `store` keeps its partitions in RocksDB databases."""
    return isinstance(store, RocksDBStore)


def write_changelog_batch(store: Store, partition: int, records: Iterable[ChangelogRecord],
                          offset: int) -> None:
    """Apply changelog records to the partition's RocksDB database and persist `offset` as
    the last changelog offset applied, in one write batch: the offset is on disk exactly
    when the records it covers are. Keys and values are stored as Faust's recovery stores
    them (faust/stores/rocksdb.py `apply_changelog_batch`, `set_persisted_offset`, which
    writes the offset after the records)."""
    import rocksdict

    rocks = cast(RocksDBStore, store)
    batch = rocksdict.WriteBatch(raw_mode=True)
    put, delete = batch.put, batch.delete
    for record in records:
        value = record.value
        if value is None:
            delete(record.key)
        else:
            put(record.key, value)
    batch.put(rocks.offset_key, str(offset).encode())
    rocks._db_for_partition(partition).write(batch)


def read_partition(store: Store, partition: int, key: Any, key_bytes: bytes) -> Any:
    """The stored value of `key` (encoded: `key_bytes`) in `partition`, or None.

    Faust's RocksDB store looks a key up in the current event's partition database, and
    without a current event (a batch handler has none) in every partition's database until
    one has it. The caller knows the partition, so this reads that database only. The
    in-memory store keeps one dict for all partitions.
    """
    if not isinstance(store, RocksDBStore):
        return store.get(key)
    raw = store._db_for_partition(partition).get(key_bytes)
    return None if raw is None else decode_value(store, raw)
