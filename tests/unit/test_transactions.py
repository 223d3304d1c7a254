"""Exactly-once bookkeeping without Kafka: parts by partition, gaps, start-up checks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from intervaltree import IntervalTree

from streams import Settings, batch_agent, create_app
from streams.transactions import (
    TransactionFailedError,
    _by_partition,
    _check_contiguous,
    in_transactions,
    prepare_worker,
)

SOURCE = TP("items", 0)


def event(offset: int, partition: int = 0) -> Any:
    return SimpleNamespace(message=SimpleNamespace(
        tp=TP("items", partition), topic="items", partition=partition, offset=offset))


def app_with_gaps(*gaps: tuple[int, int]) -> Any:
    tree = IntervalTree()
    for begin, end in gaps:
        tree[begin:end] = True
    return SimpleNamespace(consumer=SimpleNamespace(_gap={SOURCE: tree}))


def test_a_batch_is_split_by_partition_in_arrival_order() -> None:
    events = [event(5, 1), event(7, 0), event(6, 1), event(8, 0)]
    parts = list(_by_partition(events))
    assert [(tp.partition, [e.message.offset for e in part]) for tp, part in parts] == [
        (1, [5, 6]), (0, [7, 8])]


def test_contiguous_records_and_unknown_start_pass() -> None:
    _check_contiguous(app_with_gaps(), SOURCE, 10, [event(10), event(11), event(12)])
    _check_contiguous(app_with_gaps(), SOURCE, None, [event(40), event(41)])


def test_a_record_not_delivered_stops_the_commit() -> None:
    with pytest.raises(TransactionFailedError, match=r"records 11\.\.11 were not delivered"):
        _check_contiguous(app_with_gaps(), SOURCE, 10, [event(10), event(12)])
    with pytest.raises(TransactionFailedError, match=r"records 10\.\.14 were not delivered"):
        _check_contiguous(app_with_gaps(), SOURCE, 10, [event(15)])


def test_offsets_the_fetcher_recorded_as_gaps_are_fine() -> None:
    # e.g. transaction markers of a transactional source topic at 11 and 14..15
    app = app_with_gaps((11, 12), (14, 16))
    _check_contiguous(app, SOURCE, 10, [event(10), event(12), event(13), event(16)])
    with pytest.raises(TransactionFailedError):
        _check_contiguous(app_with_gaps((11, 12)), SOURCE, 10, [event(10), event(13)])


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
