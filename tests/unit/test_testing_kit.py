"""The in-memory test kit: an agent run on given records, as a team's unit test uses it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import msgspec

from streams import Backoff, Message, PerKeyTable, Tumbling, WindowedTable, batch_agent
from streams.kafka.partitioner import key_partition
from streams.testing import Record, run_agent, run_agent_async


class Payment(faust.Record, serializer="json"):
    card: str
    cents: int


spent: PerKeyTable[int] = PerKeyTable("kit_spent", value_type=int, default=int,
                                      register=False)
per_minute: WindowedTable[int] = WindowedTable("kit_per_minute", value_type=int, default=int,
                                               window=Tumbling(60), register=False)


@batch_agent("payments", value_type=Payment, sink="alerts", register=False)
async def watch(batch: list[Message[Payment]]) -> list[Any]:
    alerts = []
    with spent.batch() as totals, per_minute.batch() as minutes:
        for message in batch:
            if message.value.cents < 0:
                raise ValueError("negative amount")
            total = totals.update(message, message.key, lambda t, m=message: t + m.value.cents)
            minutes.update(message, message.key, lambda n: n + 1)
            if total > 100:
                alerts.append((message.key, {"card": message.key, "total": total}))
    return alerts


def payment(card: str, cents: int) -> dict[str, Any]:
    return {"card": card, "cents": cents}


def test_str_and_bytes_keys_land_on_kafkas_partitions_and_tables_accept_them() -> None:
    result = run_agent(watch, [("c1", payment("c1", 60)), (b"c2", payment("c2", 5)),
                               ("c1", payment("c1", 50))], tables=[spent, per_minute])
    assert result.table("kit_spent") == {"c1": 110, "c2": 5}
    assert spent.get("c1") == 110  # the table itself can be read after the run
    assert result.dead_letters == [] and result.retries == []
    partitions = {topic_partition for topic, topic_partition, _, _ in result.changelog
                  if topic.endswith("kit_spent-changelog")}
    assert partitions == {key_partition(b"c1", 3), key_partition(b"c2", 3)}


def test_keys_are_placed_by_the_producers_partitioner_when_it_is_not_javas() -> None:
    result = run_agent(watch, [("c1", payment("c1", 5)), ("c7", payment("c7", 1))],
                       tables=[spent, per_minute], key_partitioner="fnv1a")
    assert result.table("kit_spent") == {"c1": 5, "c7": 1}
    partitions = {key: p for topic, p, key, _ in result.changelog if "kit_spent" in topic}
    assert partitions == {b"c1": key_partition(b"c1", 3, "fnv1a"),
                          b"c7": key_partition(b"c7", 3, "fnv1a")}


def test_sink_records_are_plain_json_as_the_worker_writes_them() -> None:
    result = run_agent(watch, [("c1", payment("c1", 101))], tables=[spent, per_minute])
    assert result.sink_values == [{"card": "c1", "total": 101}]
    assert result.sink[0].key == b"c1"


@dataclass
class Seen:
    card: str


class Flag(msgspec.Struct):
    card: str
    level: int


def test_records_dataclasses_and_structs_reach_the_sink_without_faust_metadata() -> None:
    @batch_agent("payments", value_type=Payment, sink="out", register=False)
    async def echo(batch: list[Message[Payment]]) -> list[Any]:
        return [item for m in batch for item in (m.value, Seen(m.key), Flag(m.key, 2))]

    result = run_agent(echo, [("c1", payment("c1", 3))], tables=[])
    assert result.sink_values == [{"card": "c1", "cents": 3}, {"card": "c1"},
                                  {"card": "c1", "level": 2}]


def test_failing_records_become_dead_letters_with_reasons_and_retries_are_not_waited() -> None:
    slow = batch_agent("payments", value_type=Payment, backoff=Backoff(initial=600, maximum=3600),
                       max_retries=2, register=False)(watch.handler)
    result = run_agent(slow, [("c1", payment("c1", 5)), ("c2", payment("c2", -1)),
                              ("c3", b"not json")], tables=[spent, per_minute])
    assert result.table("kit_spent") == {"c1": 5}
    reasons = {letter.key: letter.reason for letter in result.dead_letters}
    assert reasons[b"c2"] == "ValueError: negative amount"
    assert reasons[b"c3"].startswith("DecodeError: payments[")
    assert result.dead_letters[0].topic == "payments.dlq"
    assert [retry.delay for retry in result.retries] == [600, 600 * 2]


def test_timestamps_choose_windows_and_headers_reach_the_handler() -> None:
    seen: list[Any] = []

    @batch_agent("events", register=False)
    async def record_headers(batch: list[Message[Any]]) -> None:
        seen.extend(message.headers for message in batch)
        with per_minute.batch() as minutes:
            for message in batch:
                minutes.update(message, message.key, lambda n: n + 1)

    noon = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    later = datetime(2026, 1, 1, 12, 1, 30, tzinfo=UTC)
    result = run_agent(record_headers, [
        Record("k", {}, timestamp=noon, headers={"trace": "t1"}),
        Record("k", {}, timestamp=noon),
        Record("k", {}, timestamp=later)], tables=[per_minute])
    assert result.table("kit_per_minute") == {
        ("k", datetime(2026, 1, 1, 12, 0, tzinfo=UTC)): 2,
        ("k", datetime(2026, 1, 1, 12, 1, tzinfo=UTC)): 1}
    assert seen[0] == {"trace": b"t1"}


async def test_async_tests_run_the_agent_in_their_own_loop() -> None:
    result = await run_agent_async(watch, [("c9", payment("c9", 7))], tables=[spent, per_minute])
    assert result.table("kit_spent") == {"c9": 7}


def test_each_run_starts_from_empty_tables() -> None:
    run_agent(watch, [("c1", payment("c1", 7))], tables=[spent, per_minute])
    result = run_agent(watch, [("c2", payment("c2", 1))], tables=[spent, per_minute])
    assert result.table("kit_spent") == {"c2": 1}
