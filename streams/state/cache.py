"""Recent values of a per-key table, in memory, in front of its RocksDB databases.

A batch handler reads a key before it sets it; reading RocksDB and decoding the value
every time cost more than the handler's own work. The cache holds, per key, the value the
store has (None: the store has no value) and the key's partition, for up to the last
`TABLE_CACHE_SIZE` keys read or written: when it is full, the oldest eighth is dropped.

It only ever holds what the store holds: values enter when they are read from the store
or after their changelog records were acknowledged and written to the store (see
streams.state.writes). Everything is forgotten when the worker's partitions change (a
rebalance: standby or recovered partitions were written by changelog replay, not here)
and when a handler call fails (it may have changed a cached value in place before
raising; the retried call must start from the store).
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterable
from typing import Any

#: A cache entry: (the stored value or None, the key's partition).
Entry = tuple[Any, int]

_ALL: weakref.WeakSet[ValueCache] = weakref.WeakSet()


class ValueCache:
    """Up to `size` keys of one table; `size=0` keeps nothing."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[Any, Entry] = {}
        _ALL.add(self)

    def get(self, key: Any) -> Entry | None:
        return self._entries.get(key)

    def put(self, key: Any, value: Any, partition: int) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self.size:
            if not self.size:
                return
            self._drop_oldest()
        entries[key] = (value, partition)

    def put_all(self, entries: Iterable[tuple[Any, Any, int]]) -> None:
        """`put` each `(key, value, partition)` of `entries`, in one loop (a commit
        window stores a value per key it changed)."""
        size = self.size
        if not size:
            return
        stored = self._entries
        for key, value, partition in entries:
            if key not in stored and len(stored) >= size:
                self._drop_oldest()
            stored[key] = (value, partition)

    def _drop_oldest(self) -> None:
        """Drop the oldest eighth of the entries (at least one) in one pass.

        One at a time, each drop walked the dict from its start over every slot freed
        before (they stay until the dict is rebuilt): with more keys than the cache holds,
        that was a quarter of a table job's time.
        """
        entries = self._entries
        for key in list(itertools.islice(entries, max(1, self.size // 8))):
            del entries[key]

    def forget(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def forget_all() -> None:
    """Empty every table's cache (a handler call failed)."""
    for cache in list(_ALL):
        cache.forget()
