"""Windowed tables without Kafka: window arithmetic, key encoding, batches, range queries."""

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from streams import Hopping, Settings, Tumbling, WindowedTable, batch_agent, create_app
from streams.errors import TableError
from streams.processing.models import Message
from streams.state.windows import (
    WindowValue,
    decode_window_key,
    encode_window_key,
    ordered_float,
    unordered_float,
)
from tests.unit.table_fakes import with_recording_producer

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)


class FakeEvent:
    """Faust keeps a weak reference to the current event."""


def bound(table: WindowedTable, app_id: str) -> WindowedTable:
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": app_id}),
               agents=[], tables=[table])
    return table


def test_ordered_floats_sort_like_numbers_and_round_trip() -> None:
    rng = random.Random(7)
    values = [rng.uniform(-1e12, 1e12) for _ in range(500)] + [0.0, -0.5, 59.9, T0, T0 + 0.1]
    assert sorted(values, key=ordered_float) == sorted(values)
    assert all(unordered_float(ordered_float(v)) == v for v in values)


def test_window_keys_sort_by_key_then_window_start() -> None:
    keys = [("b", 120.0), ("a", 60.0), ("a-x", 0.0), ("a", 0.0), ("a", 1e10), ("", 5.0)]
    encoded = sorted(encode_window_key(k, s, s + 59.9) for k, s in keys)
    assert [decode_window_key(e) for e in encoded] == [
        ("", (5.0, 64.9)), ("a", (0.0, 59.9)), ("a", (60.0, 119.9)),
        ("a", (1e10, 1e10 + 59.9)), ("a-x", (0.0, 59.9)), ("b", (120.0, 179.9))]


def test_key_alone_is_its_raw_bytes_so_lookups_route_like_the_source_record() -> None:
    table = bound(WindowedTable("w_routing", value_type=int, default=int,
                                window=Tumbling(60), register=False), "unit-w-routing")
    changelog = table.faust_table.changelog_topic
    assert changelog.prepare_key("customer-7", None)[0] == b"customer-7"
    assert (changelog.prepare_key(("c", (60.0, 119.9)), None)[0]
            == encode_window_key("c", 60.0, 119.9))
    from streams.kafka.partitioner import key_partition
    assert table.partition_of("customer-7") == key_partition(b"customer-7", 3)


def test_changelog_is_compacted_and_deleted_after_expiry() -> None:
    table = bound(WindowedTable("w_retention", value_type=int, default=int,
                                window=Tumbling(60), expires=timedelta(minutes=5),
                                register=False), "unit-w-retention")
    changelog = table.faust_table.changelog_topic
    assert (changelog.compacting, changelog.deleting) == (True, True)
    assert changelog.retention == 300
    assert changelog.config["segment.ms"] == "300000"


def test_changelog_topics_are_created_before_faust_with_its_configuration() -> None:
    from streams import PerKeyTable

    windowed = WindowedTable("w_spec", value_type=int, default=int, window=Tumbling(60),
                             expires=timedelta(minutes=5), register=False)
    plain = PerKeyTable("p_spec", value_type=int, default=int, register=False)
    app = create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-w-spec"}),
                     agents=[], tables=[windowed, plain])
    specs = {spec.name: spec for spec in app.changelog_topics()}
    assert specs["unit-w-spec-w_spec-changelog"].config == {
        "cleanup.policy": "compact,delete", "retention.ms": "300000", "segment.ms": "300000"}
    assert specs["unit-w-spec-p_spec-changelog"].config == {"cleanup.policy": "compact"}
    assert {spec.partitions for spec in specs.values()} == {3}


def test_tumbling_windows_hold_each_timestamp_once() -> None:
    table = bound(WindowedTable("w_tumbling", value_type=int, default=int,
                                window=Tumbling(60), register=False), "unit-w-tumbling")
    assert table.windows_at(T0) == [(T0, T0 + 59.9)]
    assert table.windows_at(T0 + 59.95) == [(T0, T0 + 59.9)]
    assert table.windows_at(T0 + 60) == [(T0 + 60, T0 + 119.9)]
    assert table.windows_at(T0 - 0.001) == [(T0 - 60, T0 - 0.1)]


def test_hopping_windows_overlap_size_over_step_times() -> None:
    table = bound(WindowedTable("w_hopping", value_type=int, default=int,
                                window=Hopping(60, 20), register=False), "unit-w-hopping")
    starts = [start for start, _ in table.windows_at(T0 + 25)]
    assert starts == [T0 - 20, T0, T0 + 20]


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Hopping(60, 90), "step 90s is larger than its size 60s"),
    (lambda: Tumbling(0.5), "whole number of seconds"),
    (lambda: Tumbling(timedelta(milliseconds=1500)), "whole number of seconds"),
    (lambda: WindowedTable("w_bad", value_type=int, default=int, window=Tumbling(60),
                           expires=0, register=False), "expires must be positive"),
])
def test_bad_window_declarations_are_refused(make, message) -> None:
    with pytest.raises(TableError, match=message):
        make()


def test_window_value_as_json_uses_iso_times_and_an_exclusive_end() -> None:
    value = WindowValue(start=T0, end=T0 + 60, value=3)
    assert value.as_dict() == {"window_start": "2027-01-15T08:00:00+00:00",
                               "window_end": "2027-01-15T08:01:00+00:00",
                               "window_start_epoch": T0, "window_end_epoch": T0 + 60,
                               "value": 3}
    assert value.start_time.isoformat() == "2027-01-15T08:00:00+00:00"


async def test_batches_count_per_record_time_and_write_each_window_once() -> None:
    counts = WindowedTable("w_counts", value_type=int, default=int, window=Tumbling(60),
                           register=False)
    hops = WindowedTable("w_hops", value_type=int, default=int, window=Hopping(60, 30),
                         register=False)
    seen: list[int] = []
    offsets = [0, 10, 59.9, 60, 119, 185]  # minutes 0 (3 records), 1 (2) and 3 (1)
    all_counted = asyncio.Event()

    @batch_agent("clicks", value_type=dict, batch_size=8, flush_interval=0.05, register=False)
    async def count(batch: list[Message[dict]]) -> None:
        with counts.batch() as per_minute, hops.batch() as per_hop:
            for message in batch:
                per_minute.update(message, message.key, lambda n: n + 1)
                per_hop.update(message, message.key, lambda n: n + 1)
        seen.append(len(batch))
        if sum(seen) == len(offsets):
            all_counted.set()

    app = create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-w-batch"}),
                     agents=[count], tables=[counts, hops])
    producer = with_recording_producer(app)
    partition = counts.partition_of("alice")
    async with count._agent.test_context() as agent:
        for offset in offsets:
            await agent.put(key=b"alice", value=json.dumps({}).encode(), partition=partition,
                            timestamp=T0 + offset, wait=False)
        await asyncio.wait_for(all_counted.wait(), 10)

    history = counts.range("alice", T0, T0 + 240)
    assert [(w.start - T0, w.end - T0, w.value) for w in history] == [
        (0, 60, 3), (60, 120, 2), (180, 240, 1)]
    changelog = counts.faust_table.changelog_topic.get_topic_name()
    writes = [p for topic, p, _, _ in producer.sent if topic == changelog]
    assert len(writes) == 3 * len(seen) == 3  # one batch: one write per window
    assert all(p == partition for p in writes)
    # a range starting inside a window includes it; one ending before a window excludes it
    assert [w.start - T0 for w in counts.range("alice", T0 + 70, T0 + 179)] == [60]
    assert counts.range("bob", T0, T0 + 240) == []
    assert counts.current("alice", now=T0 + 61).value == 2
    assert counts.current("alice", now=T0 + 150) is None
    with pytest.raises(TableError, match="before its start"):
        counts.range("alice", T0 + 10, T0)
    # hopping 60/30: windows start every 30 s; the one at 120 saw nothing, so it is not stored
    assert {w.start - T0: w.value for w in hops.range("alice", T0 - 60, T0 + 240)} == {
        -30: 2, 0: 3, 30: 2, 60: 2, 90: 1, 150: 1, 180: 1}


def test_a_key_from_another_partition_is_refused() -> None:
    table = bound(WindowedTable("w_misrouted", value_type=int, default=int,
                                window=Tumbling(60), register=False), "unit-w-misrouted")
    wrong = (table.partition_of("k") + 1) % 3
    message = Message(topic="orders", partition=wrong, offset=4, key="k", value={},
                      timestamp=datetime.fromtimestamp(T0, UTC), event=FakeEvent())
    with pytest.raises(TableError, match=rf"orders\[{wrong}\]@4: key \('k', \(.*\)\) of table "
                                         r"'w_misrouted' belongs to partition"):
        table.batch().update(message, "k", lambda n: n + 1)


def test_reads_take_datetimes_wherever_they_take_times() -> None:
    from streams.testing import Record, run_agent

    table = WindowedTable("w_dates", value_type=int, default=int, window=Tumbling(60),
                          register=False)

    @batch_agent("dated", register=False)
    async def count(batch: list[Message[dict]]) -> None:
        with table.batch() as windows:
            for message in batch:
                windows.update(message, message.key, lambda n: n + 1)

    start = datetime.fromtimestamp(T0, UTC)
    run_agent(count, [Record("k", {}, timestamp=start + timedelta(seconds=s))
                      for s in (1, 2, 61)], tables=[table])
    found = table.range("k", start, start + timedelta(minutes=5))
    assert [(w.start_time, w.value) for w in found] == [
        (start, 2), (start + timedelta(minutes=1), 1)]
    naive = start.replace(tzinfo=None)  # taken as UTC
    assert table.range("k", naive, naive + timedelta(seconds=30)) == found[:1]
    assert table.current("k", start + timedelta(seconds=70)).value == 1
    assert table.windows_at(start) == table.windows_at(T0) == [(T0, T0 + 59.9)]
