"""RocksDB tables open their databases with a bloom filter on the memtable: keys never
written read as absent, and every written key still reads back. Their keys are counted
without holding the event loop."""

import asyncio
from pathlib import Path

import faust
import pytest
from faust.types import TP

from streams import PerKeyTable, Settings, Tumbling, WindowedTable, create_app
from streams._faust.store import (
    PointLookupOptions,
    encode_key,
    encode_value,
    read_partition,
    write,
)
from streams.state.scan import count_keys
from streams.state.windows import encode_window_key
from streams.state.writes import Change


class Totals(faust.Record, serializer="json"):
    events: int = 0


def bound(name: str, store: str, tmp_path: Path) -> PerKeyTable[Totals]:
    totals = PerKeyTable(name, value_type=Totals, default=Totals, register=False)
    create_app(Settings.from_env({"TABLE_STORE": store, "APP_ID": f"unit-{name}",
                                  "DATA_DIR": str(tmp_path)}), agents=[], tables=[totals])
    return totals


def written(totals: PerKeyTable[Totals], keys: list[str]) -> None:
    """Key i gets Totals(events=i), in the store (as a commit window writes it)."""
    store = totals.faust_table.data
    changes = []
    for i, key in enumerate(keys):
        change = Change(totals.faust_table, totals.partition_of(key), key, Totals(events=i),
                        encode_key(store, key))
        change.value_bytes = encode_value(store, change.value)
        changes.append(change)
    write(store, changes)


def test_rocksdb_tables_read_every_written_key_and_no_other(tmp_path: Path) -> None:
    totals = bound("looked_up", "rocksdb", tmp_path)
    store = totals.faust_table.data
    assert type(store.rocksdb_options) is PointLookupOptions
    keys = [f"customer-{i}" for i in range(5_000)]
    written(totals, keys)

    for i, key in enumerate(keys):
        assert read_partition(store, totals.partition_of(key), key,
                              encode_key(store, key)) == Totals(events=i)
    for i in range(5_000):
        absent = f"absent-{i}"
        assert read_partition(store, totals.partition_of(absent), absent,
                              encode_key(store, absent)) is None


def test_windowed_rocksdb_tables_read_every_written_window_and_no_other(
        tmp_path: Path) -> None:
    windows = WindowedTable("windows_looked_up", value_type=int, default=int,
                            window=Tumbling(60), register=False)
    create_app(Settings.from_env({"TABLE_STORE": "rocksdb", "APP_ID": "unit-windows-looked-up",
                                  "DATA_DIR": str(tmp_path)}), agents=[], tables=[windows])
    table = windows.faust_table
    store = table.data
    assert type(store.rocksdb_options) is PointLookupOptions
    written_keys = [(f"customer-{i}", (60.0 * i, 60.0 * i + 59.9)) for i in range(2_000)]
    changes = []
    for i, key in enumerate(written_keys):
        change = Change(table, windows.partition_of(key[0]), key, i,
                        encode_window_key(key[0], *key[1]))
        change.value_bytes = encode_value(store, i)
        changes.append(change)
    write(store, changes)

    for i, (key, change) in enumerate(zip(written_keys, changes, strict=True)):
        assert read_partition(store, change.partition, key, change.key_bytes) == i
        later = (key[0], (key[1][0] + 60.0, key[1][1] + 60.0))  # a window never written
        assert read_partition(store, change.partition, later,
                              encode_window_key(later[0], *later[1])) is None


def test_memory_tables_keep_their_store(tmp_path: Path) -> None:
    totals = bound("in_memory", "memory", tmp_path)
    assert not hasattr(totals.faust_table.data, "rocksdb_options")


async def test_counting_keys_lets_the_event_loop_run_and_counts_what_len_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    totals = bound("counted", "rocksdb", tmp_path)
    table = totals.faust_table
    written(totals, [f"customer-{i}" for i in range(25_000)])
    topic = table.changelog_topic.get_topic_name()
    monkeypatch.setattr(table.app.assignor, "assigned_actives",
                        lambda: {TP(topic, 0), TP(topic, 2)})  # partition 1 is elsewhere
    loop = asyncio.get_running_loop()
    ticks = 0
    ticking = True

    def tick() -> None:  # runs once per turn of the event loop while the count goes on
        nonlocal ticks
        ticks += 1
        if ticking:
            loop.call_soon(tick)

    loop.call_soon(tick)
    try:
        count = await count_keys(table, chunk=1_000)
    finally:
        ticking = False
    assert count == len(table) < 25_000
    assert ticks >= count // 1_000  # the loop ran after every chunk
    assert await count_keys(table, still_wanted=lambda: False, chunk=1_000) is None
