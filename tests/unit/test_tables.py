"""Per-key tables in batch handlers, without Kafka (Faust's agent.test_context)."""

import asyncio
import json
from types import SimpleNamespace

import faust
import pytest
from faust.streams import current_event

from streams import PerKeyTable, Settings, batch_agent, create_app
from streams.errors import TableError
from streams.models import Message
from streams.tables import event_scope


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


def test_table_writes_need_a_message_from_an_agent() -> None:
    table = PerKeyTable("loose", value_type=Totals, default=Totals, register=False)
    message = Message(topic="t", partition=0, offset=0, key="k", value=None,
                      timestamp=None)  # type: ignore[arg-type]
    with pytest.raises(TableError, match=r"t\[0\]@0 carries no event"):
        table.batch().set(message, "k", Totals())


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


async def test_batch_updates_are_coalesced_and_go_to_their_records_partition() -> None:
    totals = PerKeyTable("totals", value_type=Totals, default=Totals, register=False)
    seen_batches: list[int] = []

    @batch_agent("clicks", value_type=dict, batch_size=6, flush_interval=0.05, register=False)
    async def count(batch: list[Message[dict]]) -> None:
        seen_batches.append(len(batch))
        with totals.batch() as pending:
            for message in batch:
                pending.update(message, message.key, lambda t: Totals(events=t.events + 1))

    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-tables"}),
               agents=[count], tables=[totals])
    table = totals.faust_table
    changelog_writes: list[tuple[int, str]] = []
    send_changelog = table.send_changelog

    def recording_send_changelog(partition, key, value, *args, **kwargs):
        changelog_writes.append((partition, key))
        return send_changelog(partition, key, value, *args, **kwargs)

    table.send_changelog = recording_send_changelog

    keys = ["k0", "k1", "k2"]
    partition_of = {key: totals.partition_of(key) for key in keys}
    async with count._agent.test_context() as agent:
        for i in range(12):  # each key arrives on its partition, as a producer puts it
            key = keys[i % 3]
            await agent.put(key=key.encode(), value=json.dumps({"i": i}).encode(),
                            partition=partition_of[key])
        await wait_until(lambda: sum(seen_batches) == 12)

    assert {key: table[key].events for key in keys} == {"k0": 4, "k1": 4, "k2": 4}
    # one write per key and batch, never one per event
    assert len(changelog_writes) == 3 * len(seen_batches) < 12
    assert all(partition == partition_of[key] for partition, key in changelog_writes)


def test_partition_of_matches_kafkas_default_partitioner() -> None:
    from streams.partitioner import key_partition

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
