"""Tables place keys with their source topic's partitioner and explain records that disagree."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
import pytest
from prometheus_client import REGISTRY
from yarl import URL

from streams import PerKeyTable, Settings, batch_agent, create_app
from streams.errors import KeyPlacementError, SettingsError
from streams.kafka.partitioner import key_partition
from streams.processing.models import Message
from streams.state.placement import Misplacements, misplaced_key, table_partitioner
from streams.state.windows import Tumbling, WindowedTable
from streams.web.routing import TableRouter


class Totals(faust.Record, serializer="json"):
    events: int = 0


class FakeEvent:
    """Faust keeps a weak reference to the current event."""


def message(topic: str, partition: int, key: str) -> Message[Any]:
    return Message(topic=topic, partition=partition, offset=7, key=key, value={},
                   timestamp=None, event=FakeEvent())  # type: ignore[arg-type]


def app_with(env: dict[str, str], *tables: Any, topics: tuple[str, ...] = ("orders",)) -> Any:
    agents = []
    for topic in topics:
        @batch_agent(topic, value_type=dict, register=False, name=f"count-{topic}")
        async def count(batch: list[Message[dict[str, Any]]]) -> None: ...

        agents.append(count)
    settings = Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-placement", **env})
    return create_app(settings, agents=agents, tables=list(tables))


def test_tables_place_keys_with_their_topics_partitioner() -> None:
    totals = PerKeyTable("crc_totals", value_type=Totals, default=Totals, register=False)
    windows = WindowedTable("crc_windows", value_type=int, default=int, window=Tumbling(60),
                            register=False)
    app_with({"KEY_PARTITIONER_TOPICS": "orders:consistent_random"}, totals, windows)
    assert totals.key_partitioner == windows.key_partitioner == "consistent_random"
    for key in ("customer-007", "foobar", "ünïcode"):
        expected = key_partition(key.encode(), 3, "consistent")
        assert totals.partition_of(key) == expected
        assert windows.partition_of((key, (0.0, 60.0))) == expected
    # a record on the CRC32 partition is accepted, one on the murmur2 partition refused
    batch = totals.batch()
    batch.set(message("orders", key_partition(b"foobar", 3, "consistent"), "foobar"),
              "foobar", Totals(events=1))
    with pytest.raises(KeyPlacementError, match="matches murmur2 and fnv1a, not crc32"):
        batch.set(message("orders", key_partition(b"foobar", 3), "foobar"), "foobar",
                  Totals(events=1))


def test_fausts_own_sends_place_keys_with_key_partitioner() -> None:
    """Sinks and a handler's topic.send go through Faust's producer."""
    app = app_with({"KEY_PARTITIONER": "consistent"})
    assert app.conf.producer_partitioner(b"foobar", [0, 1, 2], [0, 1, 2]) == 2


def test_a_declared_source_wins_and_differing_agent_topics_need_one() -> None:
    def partitioner_for(topic: str) -> str:
        return {"clicks": "fnv1a", "views": "fnv1a"}.get(topic, "murmur2")

    assert table_partitioner("t", "clicks", partitioner_for, ["orders"]) == "fnv1a"
    assert table_partitioner("t", None, partitioner_for, ["clicks", "views"]) == "fnv1a"
    assert table_partitioner("t", None, partitioner_for, []) == "murmur2"
    with pytest.raises(SettingsError, match=r"clicks: fnv1a; orders: murmur2\): declare the "
                                            r"source topic of table 't'"):
        table_partitioner("t", None, partitioner_for, ["orders", "clicks"])
    totals = PerKeyTable("two_topics", value_type=Totals, default=Totals, register=False)
    with pytest.raises(SettingsError, match="table 'two_topics'"):
        app_with({"KEY_PARTITIONER_TOPICS": "clicks:fnv1a"}, totals,
                 topics=("orders", "clicks"))


def test_the_reason_names_the_matching_partitioner_and_the_setting() -> None:
    # "abc" on 12 partitions: murmur2 3, crc32 6, FNV-1a 11
    error = misplaced_key(message("orders", 6, "abc"), "abc", "totals", b"abc", 3, 12,
                          "murmur2")
    assert str(error) == (
        "orders[6]@7: key 'abc' of table 'totals' belongs to partition 3 by murmur2 (the key "
        "partitioner of topic orders), the record came from partition 6; this record's "
        "partition matches crc32, not murmur2: set KEY_PARTITIONER=consistent_random for "
        "topic orders (KEY_PARTITIONER_TOPICS=orders:consistent_random) if that is how its "
        "producers partition")
    assert (error.topic, error.partitioner, error.matches) == ("orders", "murmur2", ("crc32",))
    lost = misplaced_key(message("orders", 1, "abc"), "abc", "totals", b"abc", 3, 12,
                         "murmur2")
    assert lost.matches == () and "no known partitioner puts the key there" in str(lost)


def test_misplaced_records_are_counted_and_summarized_once_a_minute(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    counts = Misplacements(interval=60, delay=5, clock=lambda: now[0])
    topic = "unit-summary"
    crc = KeyPlacementError("x", topic=topic, partitioner="murmur2", matches=("crc32",))
    both = KeyPlacementError("x", topic=topic, partitioner="murmur2",
                             matches=("crc32", "fnv1a"))
    def crc32_count() -> float:
        return REGISTRY.get_sample_value("streams_partitioner_mismatch_total",
                                         {"topic": topic, "matches": "crc32"}) or 0.0

    before = crc32_count()
    with caplog.at_level(logging.WARNING, logger="streams.state.placement"):
        counts.record(both)  # no event loop: logged at once
        now[0] += 10
        counts.record(crc)
        counts.record(crc)
    assert len(caplog.records) == 1
    assert "all of them match crc32 and fnv1a, not murmur2: set KEY_PARTITIONER=" \
           "consistent_random or fnv1a" in caplog.records[0].getMessage()
    assert counts.summary() == {topic: {"records": 3, "partitioner": "murmur2",
                                        "matches": {"crc32": 3, "fnv1a": 1},
                                        "suggested": ["consistent_random"]}}
    assert crc32_count() == before + 3


async def test_the_first_summary_waits_for_the_burst(caplog: pytest.LogCaptureFixture) -> None:
    counts = Misplacements(interval=60, delay=0.05)
    topic = "unit-burst"
    with caplog.at_level(logging.WARNING, logger="streams.state.placement"):
        counts.record(KeyPlacementError("x", topic=topic, partitioner="murmur2",
                                        matches=("crc32", "fnv1a")))
        for _ in range(4):
            counts.record(KeyPlacementError("x", topic=topic, partitioner="murmur2",
                                            matches=("crc32",)))
        assert not caplog.records
        deadline = asyncio.get_running_loop().time() + 5
        while not caplog.records and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)  # the summary is written `delay` after the first record
    [line] = [r.getMessage() for r in caplog.records]
    assert f"topic {topic}: 5 record(s) dead-lettered so far" in line
    assert "all of them match crc32, not murmur2: set KEY_PARTITIONER=consistent_random " \
           f"for topic {topic} (KEY_PARTITIONER_TOPICS={topic}:consistent_random)" in line


class FakeAssignor:
    """What the group's assignment says: worker URL -> changelog topic -> active partitions."""

    def __init__(self, owners: dict[str, dict[str, list[int]]]) -> None:
        self.owners = owners

    def table_metadata(self, topic: str) -> dict[str, dict[str, list[int]]]:
        return {url: {t: p for t, p in tps.items() if t == topic}
                for url, tps in self.owners.items()}


def test_lookups_route_to_the_owner_of_the_tables_partition() -> None:
    totals = PerKeyTable("routed", value_type=Totals, default=Totals, register=False)
    app = app_with({"KEY_PARTITIONER": "consistent"}, totals)
    changelog = totals.faust_table.changelog_topic.get_topic_name()
    router = TableRouter(app)
    router.app.assignor = FakeAssignor({"http://a:1": {changelog: [0, 2]},  # type: ignore[misc]
                                        "http://b:2": {changelog: [1]}})
    # crc32: "foobar" -> 2, "hello" -> 1; murmur2 would say 0 for both
    assert router.key_store("routed", "foobar") == URL("http://a:1")
    assert router.key_store("routed", "hello") == URL("http://b:2")
    router.app.assignor = FakeAssignor({"http://a:1": {changelog: [0]}})  # type: ignore[misc]
    with pytest.raises(KeyError):
        router.key_store("routed", "hello")


def test_a_table_bound_again_places_keys_with_its_new_partitioner() -> None:
    totals = PerKeyTable("rebound_totals", value_type=Totals, default=Totals, register=False)
    app_with({}, totals)
    assert totals.partition_of("foobar") == key_partition(b"foobar", 3) == 0
    app_with({"KEY_PARTITIONER_TOPICS": "orders:consistent_random"}, totals)
    assert totals.partition_of("foobar") == key_partition(b"foobar", 3, "consistent") == 2
