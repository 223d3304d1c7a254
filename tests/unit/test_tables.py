"""Per-key tables in batch handlers, without Kafka (Faust's agent.test_context)."""

import asyncio
import json
from types import SimpleNamespace

import faust
import pytest
from faust.streams import current_event

from streams import Backoff, PerKeyTable, Settings, batch_agent, create_app
from streams._faust.events import event_scope
from streams.errors import TableError
from streams.processing.models import Message
from tests.unit.table_fakes import with_recording_producer


class Totals(faust.Record, serializer="json"):
    events: int = 0


class FakeEvent:
    """Faust keeps a weak reference to the current event."""


def test_event_scope_makes_the_event_current_and_restores_it() -> None:
    first, second = FakeEvent(), FakeEvent()
    assert current_event() is None
    with event_scope(first):
        assert current_event() is first
        with event_scope(second):
            assert current_event() is second
        assert current_event() is first
    assert current_event() is None


def test_table_changes_outside_a_batch_handler_are_refused() -> None:
    table = PerKeyTable("loose", value_type=Totals, default=Totals, register=False)
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-loose"}),
               agents=[], tables=[table])
    message = Message(topic="t", partition=table.partition_of("k"), offset=0, key="k",
                      value=None, timestamp=None)  # type: ignore[arg-type]
    with pytest.raises(TableError, match="outside a batch handler"), table.batch() as pending:
        pending.set(message, "k", Totals())


def test_unbound_table_says_how_to_bind_it() -> None:
    table = PerKeyTable("unbound", value_type=Totals, default=Totals, register=False)
    with pytest.raises(TableError, match="not bound to an app"):
        table.get("k")


async def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("commit_interval_ms", ["0", "60000"])
async def test_batch_updates_are_coalesced_and_go_to_their_records_partition(
        commit_interval_ms: str) -> None:
    totals = PerKeyTable("totals", value_type=Totals, default=Totals, register=False)
    seen_batches: list[int] = []

    @batch_agent("clicks", value_type=dict, batch_size=6, flush_interval=0.05, register=False)
    async def count(batch: list[Message[dict]]) -> None:
        seen_batches.append(len(batch))
        with totals.batch() as pending:
            for message in batch:
                pending.update(message, message.key, lambda t: Totals(events=t.events + 1))

    app = create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-tables",
                                        "COMMIT_INTERVAL_MS": commit_interval_ms}),
                     agents=[count], tables=[totals])
    producer = with_recording_producer(app)
    table = totals.faust_table

    keys = ["k0", "k1", "k2"]
    partition_of = {key: totals.partition_of(key) for key in keys}
    async with count._agent.test_context() as agent:
        for i in range(12):  # each key arrives on its partition, as a producer puts it
            key = keys[i % 3]
            await agent.put(key=key.encode(), value=json.dumps({"i": i}).encode(),
                            partition=partition_of[key], wait=False)
        # looked up at once (the commit interval may hold them back from the store)
        await wait_until(lambda: sum(seen_batches) == 12 and {
            key: totals.get(key).events for key in keys} == {"k0": 4, "k1": 4, "k2": 4})
        if commit_interval_ms == "0":  # stored once the changelog acknowledged it
            await wait_until(lambda: {key: table[key].events for key in keys} == {
                "k0": 4, "k1": 4, "k2": 4})

    # one changelog record per key and commit (each batch on its own, or the batches of
    # one commit interval together), never one per event, raw keys, and in the changelog
    # partition of the key's records
    batches_per_commit = 1 if commit_interval_ms == "0" else len(seen_batches)
    assert len(seen_batches) > 1
    assert 3 * len(seen_batches) // batches_per_commit == len(producer.sent) < 12
    assert {topic for topic, *_ in producer.sent} == {table.changelog_topic.get_topic_name()}
    assert all(partition == partition_of[key.decode()]
               for _, partition, key, _ in producer.sent)
    last = {key.decode(): json.loads(value)["events"] for _, _, key, value in producer.sent}
    assert last == {"k0": 4, "k1": 4, "k2": 4}


async def test_a_retried_handler_call_counts_its_records_once() -> None:
    totals = PerKeyTable("retried", value_type=Totals, default=Totals, register=False)
    calls: list[int] = []

    @batch_agent("clicks", value_type=dict, batch_size=3, flush_interval=0.05,
                 max_retries=2, backoff=Backoff(initial=0.001), register=False)
    async def count(batch: list[Message[dict]]) -> None:
        calls.append(len(batch))
        with totals.batch() as pending:
            for message in batch:
                pending.update(message, message.key, lambda t: Totals(events=t.events + 1))
        if len(calls) == 1:
            raise RuntimeError("fails after writing, once")

    app = create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-retry"}),
                     agents=[count], tables=[totals])
    producer = with_recording_producer(app)
    partition = totals.partition_of("k")
    async with count._agent.test_context() as agent:
        for i in range(3):
            await agent.put(key=b"k", value=json.dumps({"i": i}).encode(),
                            partition=partition, wait=False)
        await wait_until(lambda: len(producer.sent) == 1)

    assert calls == [3, 3]
    assert totals.faust_table["k"].events == 3


def test_partition_of_matches_kafkas_default_partitioner() -> None:
    from streams.kafka.partitioner import key_partition

    totals = PerKeyTable("routing", value_type=Totals, default=Totals, register=False)
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-routing"}),
               agents=[], tables=[totals])
    for key in ("customer-007", "c1", "", "ünïcode"):
        assert totals.partition_of(key) == key_partition(key.encode(), 3)


def test_a_key_from_another_partition_is_refused() -> None:
    totals = PerKeyTable("misrouted", value_type=Totals, default=Totals, register=False)
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-misrouted"}),
               agents=[], tables=[totals])
    wrong = (totals.partition_of("k") + 1) % 3
    message = Message(topic="orders", partition=wrong, offset=9, key="other", value={},
                      timestamp=None, event=FakeEvent())  # type: ignore[arg-type]
    with pytest.raises(TableError, match=rf"orders\[{wrong}\]@9: key 'k' of table "
                                         r"'misrouted' belongs to partition"):
        totals.batch().set(message, "k", Totals(events=1))


async def test_a_failing_handler_writes_nothing() -> None:
    totals = PerKeyTable("failing", value_type=Totals, default=Totals, register=False)

    @batch_agent("orders", value_type=dict, register=False)
    async def unused(batch: list[Message[dict]]) -> None: ...

    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-fail"}),
               agents=[unused], tables=[totals])
    message = Message(topic="orders", partition=totals.partition_of("k"), offset=0, key="k",
                      value={}, timestamp=None, event=SimpleNamespace())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError), totals.batch() as pending:
        pending.set(message, "k", Totals(events=1))
        raise RuntimeError("handler failed")
    assert totals.get("k") is None


def test_changelog_stays_an_unacked_internal_topic_with_raw_keys() -> None:
    """Changelog records are not acked by agents: an acking changelog would hold commits."""
    totals = PerKeyTable("changelog_kind", value_type=Totals, default=Totals, register=False)
    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-changelog"}),
               agents=[], tables=[totals])
    changelog = totals.faust_table.changelog_topic
    assert (changelog.acks, changelog.internal) == (False, True)
    assert changelog.prepare_key("c7", None)[0] == b"c7"
