"""RocksDB tables open their databases with a bloom filter on the memtable: keys never
written read as absent, and every written key still reads back."""

from pathlib import Path

import faust

from streams import PerKeyTable, Settings, create_app
from streams._faust.store import (
    PointLookupOptions,
    encode_key,
    encode_value,
    read_partition,
    write,
)
from streams.state.writes import Change


class Totals(faust.Record, serializer="json"):
    events: int = 0


def bound(name: str, store: str, tmp_path: Path) -> PerKeyTable[Totals]:
    totals = PerKeyTable(name, value_type=Totals, default=Totals, register=False)
    create_app(Settings.from_env({"TABLE_STORE": store, "APP_ID": f"unit-{name}",
                                  "DATA_DIR": str(tmp_path)}), agents=[], tables=[totals])
    return totals


def test_rocksdb_tables_read_every_written_key_and_no_other(tmp_path: Path) -> None:
    totals = bound("looked_up", "rocksdb", tmp_path)
    store = totals.faust_table.data
    assert type(store.rocksdb_options) is PointLookupOptions
    keys = [f"customer-{i}" for i in range(5_000)]
    changes = []
    for i, key in enumerate(keys):
        change = Change(totals.faust_table, totals.partition_of(key), key, Totals(events=i),
                        encode_key(store, key))
        change.value_bytes = encode_value(store, change.value)
        changes.append(change)
    write(store, changes)

    for i, key in enumerate(keys):
        assert read_partition(store, totals.partition_of(key), key,
                              encode_key(store, key)) == Totals(events=i)
    for i in range(5_000):
        absent = f"absent-{i}"
        assert read_partition(store, totals.partition_of(absent), absent,
                              encode_key(store, absent)) is None


def test_memory_tables_keep_their_store(tmp_path: Path) -> None:
    totals = bound("in_memory", "memory", tmp_path)
    assert not hasattr(totals.faust_table.data, "rocksdb_options")
