"""Ordered reads of a table's local state, straight from its store.

Faust's RocksDB store keeps one database per partition (rocksdict `Rdict`s
in raw mode: keys and values are the changelog's bytes). A scan seeks each active
partition's database to a start key and merges the sorted iterators, so a page of N keys
reads about N keys, however large the table. The in-memory store (tests, `TABLE_STORE=memory`)
has no partitions and no order: its keys are encoded and sorted on every scan.

Keys compare as bytes, as RocksDB's default comparator does. For str keys stored as raw
UTF-8 that is the order of the strings themselves.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Iterator
from typing import Any

from streams._faust import store as faust_store
from streams._faust.store import RawDB, encode_key, partition_dbs

#: The key under which Faust's RocksDB store keeps a partition's changelog offset.
OFFSET_KEY = b"__faust\0offset__"


def active_partitions(table: Any) -> list[int]:
    """The changelog partitions this worker is active for (standbys are not served)."""
    topic = table.changelog_topic.get_topic_name()
    actives = table.app.assignor.assigned_actives()
    return sorted(tp.partition for tp in actives if tp.topic == topic)


def scan(table: Any, start: bytes = b"", *, partitions: list[int] | None = None,
         ) -> Iterator[tuple[bytes, bytes | Any]]:
    """(key bytes, value) from `start` on, in key order, over the active local partitions.

    Values are raw bytes for RocksDB (decode with `decode_value`) and already decoded for
    the in-memory store. `partitions` narrows the scan (a key lookup needs only its own).
    """
    store = table.data
    dbs = partition_dbs(store)
    if dbs is None:
        yield from _memory_scan(store, start)
        return
    wanted = active_partitions(table) if partitions is None else partitions
    iterators = [_db_scan(dbs[p], start) for p in wanted if p in dbs]
    yield from heapq.merge(*iterators, key=lambda item: item[0])


async def count_keys(table: Any, *, still_wanted: Callable[[], bool] = lambda: True,
                     chunk: int = 10_000) -> int | None:
    """The keys of `table` in the partitions this worker is active for (what `len(table)`
    counts), the event loop let run after every `chunk` keys; None if `still_wanted()`
    turned false meanwhile (a rebalance: the partitions may be closing).

    Counting means reading every key: `len(table)` held the event loop for the whole
    table (about a second per million keys), long enough to miss heartbeats and delay
    every batch on a large table.
    """
    store = table.data
    dbs = partition_dbs(store)
    if dbs is None:
        return len(store.data)
    count = 0
    for partition in active_partitions(table):
        db = dbs.get(partition)
        if db is None:
            continue
        iterator = db.iter()
        iterator.seek(b"")
        while iterator.valid():
            for _ in range(chunk):
                if not iterator.valid():
                    break
                if iterator.key() != OFFSET_KEY:
                    count += 1
                iterator.next()
            await asyncio.sleep(0)
            if not still_wanted():
                return None
    return count


def decode_value(table: Any, value: Any) -> Any:
    """A value as `scan` yields it, decoded with the table's value type."""
    if isinstance(value, bytes | bytearray):
        return faust_store.decode_value(table.data, bytes(value))
    return value


def decode_key(table: Any, key: bytes) -> Any:
    """A key as `scan` yields it, decoded with the table's key serializer."""
    return faust_store.decode_key(table.data, key)


def _db_scan(db: RawDB, start: bytes) -> Iterator[tuple[bytes, bytes]]:
    iterator = db.iter()
    iterator.seek(start)
    while iterator.valid():
        key = iterator.key()
        if key != OFFSET_KEY:
            yield key, iterator.value()
        iterator.next()


def _memory_scan(store: Any, start: bytes) -> Iterator[tuple[bytes, Any]]:
    encoded = sorted(((encode_key(store, key), value) for key, value in store.data.items()),
                     key=lambda item: item[0])
    for key, value in encoded:
        if key >= start:
            yield key, value
