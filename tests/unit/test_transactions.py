"""Exactly-once bookkeeping without Kafka: parts by partition, start-up checks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams import Settings, batch_agent, create_app
from streams.processing.transactions import (
    _CURRENT,
    PartTransaction,
    _by_partition,
    in_transactions,
    persist_when_committed,
    prepare_worker,
)


def event(offset: int, partition: int = 0) -> Any:
    return SimpleNamespace(message=SimpleNamespace(
        tp=TP("items", partition), topic="items", partition=partition, offset=offset))


def test_a_batch_is_split_by_partition_in_arrival_order() -> None:
    events = [event(5, 1), event(7, 0), event(6, 1), event(8, 0)]
    parts = list(_by_partition(events))
    assert [(tp.partition, [e.message.offset for e in part]) for tp, part in parts] == [
        (1, [5, 6]), (0, [7, 8])]


def settings(guarantee: str) -> Settings:
    return Settings.from_env({"TABLE_STORE": "memory", "PROCESSING_GUARANTEE": guarantee})


def test_at_least_once_processing_is_left_as_it_is() -> None:
    async def process(events: Any) -> None: ...

    app = create_app(settings("at_least_once"), agents=[], tables=[])
    assert in_transactions(app, process) is process


def test_exactly_once_refuses_concurrent_agent_instances(capsys: Any) -> None:
    @batch_agent("items", concurrency=2, register=False)
    async def handle(batch: Any) -> None: ...

    app = create_app(settings("exactly_once"), agents=[handle], tables=[])
    app.in_transaction = True  # as in a worker process
    with pytest.raises(SystemExit) as stopped:
        prepare_worker(app)
    assert stopped.value.code == 2
    assert "PROCESSING_GUARANTEE=exactly_once needs concurrency=1" in capsys.readouterr().err


def test_the_changelog_offsets_of_a_part_wait_for_its_commit() -> None:
    changelog = TP("app-counts-changelog", 0)
    store, other_store = object(), object()
    persist_when_committed(store, changelog, 9)  # outside a batch part: nothing to wait for
    part = PartTransaction(TP("items", 0), "app-0-0")
    token = _CURRENT.set(part)
    try:
        persist_when_committed(store, changelog, 12)
        persist_when_committed(other_store, changelog, 11)  # an earlier write of the part
    finally:
        _CURRENT.reset(token)
    assert part.changelog_offsets == {changelog: (store, 12)}
