"""The pipeline of batches: handled while the previous ones are acknowledged, committed
in windows, finished in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from streams.processing.pipeline import BatchPipeline, PipelineStopped
from streams.state import writes as table_writes


class SinkAcks:
    """A processor whose sink acknowledgement of each batch the test releases by hand."""

    def __init__(self) -> None:
        self.acks: dict[str, asyncio.Future[None]] = {}
        self.handled: list[str] = []

    async def start(self, events: Sequence[str]) -> asyncio.Future[None]:
        name = events[0]
        self.handled.append(name)
        self.acks[name] = asyncio.get_running_loop().create_future()
        return self.acks[name]


def pipeline(processor: SinkAcks) -> tuple[BatchPipeline, list[str], list[BaseException]]:
    acknowledged: list[str] = []
    failures: list[BaseException] = []

    async def on_failure(exc: BaseException) -> None:
        failures.append(exc)

    return (BatchPipeline(app=None, processor=processor,  # type: ignore[arg-type]
                          acknowledge=lambda events: acknowledged.extend(events),
                          on_failure=on_failure), acknowledged, failures)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_next_batch_is_handled_while_one_is_acknowledged_and_acks_stay_in_order(
) -> None:
    processor = SinkAcks()
    batches, acknowledged, _ = pipeline(processor)
    await batches.submit(["a"])
    second = asyncio.create_task(batches.submit(["b"]))
    await settle()
    # "b" was handled while "a" waits for its acknowledgement; the submit of "b" waits
    # for "a" (one batch in flight), so the agent takes no third batch yet
    assert processor.handled == ["a", "b"] and acknowledged == [] and not second.done()

    processor.acks["b"].set_result(None)  # "b" acknowledged first by the brokers
    await settle()
    assert acknowledged == [] and not second.done()  # but it is not done before "a"

    processor.acks["a"].set_result(None)
    await asyncio.wait_for(second, 1)
    await batches.drain()
    assert acknowledged == ["a", "b"]


async def test_a_batch_that_fails_to_finish_stops_the_pipeline_and_nothing_after_it_is_acked(
) -> None:
    processor = SinkAcks()
    batches, acknowledged, failures = pipeline(processor)
    await batches.submit(["a"])
    second = asyncio.create_task(batches.submit(["b"]))
    await settle()
    processor.acks["a"].set_exception(ConnectionError("sink not acknowledged"))
    with pytest.raises(PipelineStopped):
        await asyncio.wait_for(second, 1)
    processor.acks["b"].set_result(None)
    await batches.drain()
    assert acknowledged == []
    assert [str(exc) for exc in failures] == ["sink not acknowledged"]  # reported once
    with pytest.raises(PipelineStopped):
        await batches.submit(["c"])


async def test_cancel_leaves_the_batch_in_flight_unacknowledged() -> None:
    processor = SinkAcks()
    batches, acknowledged, _ = pipeline(processor)
    await batches.submit(["a"])
    batches.cancel()
    processor.acks["a"].set_result(None)
    await settle()
    assert acknowledged == []



class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def windowed(processor: Any, clock: Clock) -> tuple[BatchPipeline, list[str]]:
    acknowledged: list[str] = []

    async def on_failure(exc: BaseException) -> None:
        raise AssertionError(f"unexpected failure {exc!r}")

    return (BatchPipeline(app=None, processor=processor,
                          acknowledge=lambda events: acknowledged.extend(events),
                          on_failure=on_failure, commit_interval=10.0, clock=clock),
            acknowledged)


class WritingSinkAcks(SinkAcks):
    """`SinkAcks` whose handler also changes one table key per batch."""

    async def start(self, events: Sequence[str]) -> asyncio.Future[None]:
        writes = table_writes.current()
        assert writes is not None
        writes.put(table_writes.Change(SimpleNamespace(name="totals"), 0, events[0], 1,
                                       events[0].encode(), b"1"))
        return await super().start(events)


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Table changes sent and stored at once (no producer, no store)."""

    async def queued(self: table_writes.PendingWrites, app: Any) -> None:
        return None

    async def stored(self: table_writes.PendingWrites, app: Any) -> None:
        self._changes.clear()

    monkeypatch.setattr(table_writes.PendingWrites, "send", queued)
    monkeypatch.setattr(table_writes.PendingWrites, "finish", stored)


@pytest.mark.usefixtures("stores")
async def test_batches_of_one_commit_interval_are_committed_and_acknowledged_together(
) -> None:
    processor, clock = WritingSinkAcks(), Clock()
    batches, acknowledged = windowed(processor, clock)
    assert batches.seconds_to_commit() is None  # no window open
    await batches.submit(["a"])
    clock.now = 4.0
    assert batches.seconds_to_commit() == 6.0
    await batches.submit(["b"])
    for name in ("a", "b"):
        processor.acks[name].set_result(None)
    await settle()
    assert acknowledged == []  # sink acknowledged, but the window is still open

    clock.now = 10.0
    await batches.submit(["c"])  # the window is due: closed with its third batch
    assert batches.seconds_to_commit() is None
    processor.acks["c"].set_result(None)
    await batches.drain()
    assert acknowledged == ["a", "b", "c"]


async def test_a_window_without_table_changes_closes_with_its_batch() -> None:
    """Nothing to coalesce: a stateless agent's acknowledgements are not held back."""
    processor, clock = SinkAcks(), Clock()
    batches, acknowledged = windowed(processor, clock)
    await batches.submit(["a"])
    assert batches.seconds_to_commit() is None  # closed, although not due
    processor.acks["a"].set_result(None)
    await settle()
    assert acknowledged == ["a"]


@pytest.mark.usefixtures("stores")
async def test_drain_commits_the_open_window() -> None:
    processor, clock = WritingSinkAcks(), Clock()
    batches, acknowledged = windowed(processor, clock)
    await batches.submit(["a"])
    assert batches.seconds_to_commit() == 10.0
    processor.acks["a"].set_result(None)
    await batches.drain()
    assert acknowledged == ["a"]


class WritingProcessor:
    """A processor whose handler changes one key per event, and fails on "bad" after
    changing its key."""

    table = SimpleNamespace(name="totals")

    async def start(self, events: Sequence[str]) -> Any:
        writes = table_writes.current()
        assert writes is not None
        for name in events:
            writes.put(table_writes.Change(self.table, 0, name, 1, name.encode(), b"1"))
        if "bad" in events:
            raise ValueError("handler failed")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_a_batch_that_raises_leaves_nothing_in_the_window_and_lookups_see_the_rest(
) -> None:
    processor, clock = WritingProcessor(), Clock()
    batches, acknowledged = windowed(processor, clock)
    await batches.submit(["a"])
    with pytest.raises(ValueError):
        await batches.submit(["bad"])
    latest = table_writes.latest_change
    assert latest(processor.table, b"a") is not None  # handled, not committed yet
    assert latest(processor.table, b"bad") is None
    batches.cancel()
    assert latest(processor.table, b"a") is None  # given up: lookups read the store
    assert acknowledged == []
