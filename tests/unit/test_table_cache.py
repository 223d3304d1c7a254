"""The in-memory cache of table values: bounded, only what the store holds, forgotten on
rebalance and after a failed handler call."""

import asyncio
import json

import faust

from streams import Backoff, PerKeyTable, Settings, batch_agent, create_app
from streams.processing.models import Message
from streams.state.cache import ValueCache
from tests.unit.table_fakes import with_recording_producer


class Totals(faust.Record, serializer="json"):
    events: int = 0


async def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


def test_the_cache_keeps_the_most_recent_keys_up_to_its_size() -> None:
    cache = ValueCache(2)
    cache.put("a", 1, 0)
    cache.put("b", 2, 1)
    cache.put("a", 3, 0)  # a known key: no eviction
    cache.put("c", 4, 2)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, (2, 1), (4, 2))
    off = ValueCache(0)
    off.put("a", 1, 0)
    assert len(off) == 0


def test_a_full_cache_drops_its_oldest_eighth_at_once() -> None:
    cache = ValueCache(16)
    for n in range(16):
        cache.put(n, n, 0)
    cache.put(16, 16, 0)
    assert len(cache) == 15
    assert cache.get(0) is None and cache.get(1) is None
    assert [cache.get(n) for n in range(2, 17)] == [(n, 0) for n in range(2, 17)]
    for n in range(17, 1000):  # never more than its size, the newest always kept
        cache.put(n, n, 0)
        assert len(cache) <= 16 and cache.get(n) == (n, 0)


def test_putting_many_keeps_what_putting_each_keeps() -> None:
    entries = [(n % 23, n, n % 3) for n in range(200)]
    one_by_one, at_once = ValueCache(16), ValueCache(16)
    for entry in entries:
        one_by_one.put(*entry)
    at_once.put_all(entries)
    assert len(at_once) == len(one_by_one) < 23
    assert [at_once.get(key) for key in range(23)] == [one_by_one.get(key) for key in range(23)]
    off = ValueCache(0)
    off.put_all(entries)
    assert len(off) == 0


def test_the_size_comes_from_the_setting() -> None:
    totals = PerKeyTable("sized", value_type=Totals, default=Totals, register=False)
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-sized",
                                  "TABLE_CACHE_SIZE": "7"}), agents=[], tables=[totals])
    assert totals.value_cache.size == 7


async def test_a_failed_call_that_changed_a_cached_value_in_place_counts_once(tmp_path) -> None:
    totals = PerKeyTable("in-place", value_type=Totals, default=Totals, register=False)
    calls: list[int] = []

    @batch_agent("clicks", value_type=dict, batch_size=3, flush_interval=0.05,
                 max_retries=2, backoff=Backoff(initial=0.001), register=False)
    async def count(batch: list[Message[dict]]) -> None:
        calls.append(len(batch))
        with totals.batch() as pending:
            for message in batch:
                current = pending.get(message.key)
                current.events += 1  # the cached object itself
                pending.set(message, message.key, current)
        if len(calls) == 2:
            raise RuntimeError("fails after changing the value, once")

    # RocksDB: the in-memory store hands out its own objects, cache or not
    app = create_app(Settings.from_env({"TABLE_STORE": "rocksdb", "APP_ID": "unit-in-place",
                                        "DATA_DIR": str(tmp_path)}),
                     agents=[count], tables=[totals])
    producer = with_recording_producer(app)
    partition = totals.partition_of("k")
    async with count._agent.test_context() as agent:
        for i in range(3):
            await agent.put(key=b"k", value=json.dumps({"i": i}).encode(),
                            partition=partition, wait=False)
        await wait_until(lambda: len(producer.sent) == 1)
        assert totals.value_cache.get("k") is not None  # the stored value is cached
        for i in range(3):
            await agent.put(key=b"k", value=json.dumps({"i": i}).encode(),
                            partition=partition, wait=False)
        await wait_until(lambda: len(producer.sent) == 2)

    assert calls == [3, 3, 3]
    assert json.loads(producer.sent[-1][3])["events"] == 6
    assert totals.faust_table["k"].events == 6


async def test_a_rebalance_forgets_the_cache() -> None:
    totals = PerKeyTable("rebalanced", value_type=Totals, default=Totals, register=False)
    app = create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-rebalance"}),
                     agents=[], tables=[totals])
    totals.faust_table.data["k"] = Totals(events=1)
    assert totals.stored("k")[0].events == 1
    # a changelog replayed while the partition was elsewhere changed the store
    totals.faust_table.data["k"] = Totals(events=5)
    assert totals.stored("k")[0].events == 1
    await app.on_partitions_revoked.send(revoked=set())
    assert totals.stored("k")[0].events == 5
    totals.faust_table.data["k"] = Totals(events=9)
    await app.on_partitions_assigned.send(assigned=set())
    assert totals.stored("k") == (Totals(events=9), totals.partition_of("k"))
