"""Transient handler failures without Kafka: waited out with backoff, never dead-lettered."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from streams import RetryableError, batch_agent
from streams.backoff import Backoff
from streams.errors import BatchAbandoned, TransientDeadlineError
from streams.observability.metrics import register_metrics
from streams.processing.models import Message
from streams.processing.processor import BatchProcessor, HandlerFailedError
from streams.processing.transient import WAITING
from streams.state import writes as table_writes
from streams.testing import run_agent
from tests.unit.test_batch_processing import RecordingDeadLetters, RecordingSink, event

FAST = Backoff(0.1, 2.0, 0.5)


class Clock:
    """A monotonic clock the fake sleep moves forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def processor(handler: Any, clock: Clock, *, agent: str = "transient-test",
              transient: tuple[type[BaseException], ...] = (), deadline: float | None = None,
              dead_letters: Any = None, sink: Any = None, retries: int = 3,
              giving_up: Any = None,
              backoff: Backoff = FAST) -> BatchProcessor:
    return BatchProcessor(agent=agent, handler=handler, value_type=dict, key_type=str,
                          max_retries=retries, backoff=backoff,
                          dead_letters=dead_letters, sink=sink, sleep=clock.sleep,
                          transient=transient, transient_deadline_s=deadline,
                          giving_up=giving_up, clock=clock)


def metric(name: str, agent: str) -> float:
    # The processor is built without an app here, so nothing has exposed the metrics yet.
    return register_metrics(REGISTRY).get_sample_value(name, {"agent": agent}) or 0.0


async def test_retryable_error_waits_with_backoff_and_dead_letters_nothing() -> None:
    clock = Clock()
    calls: list[int] = []

    async def handler(batch: list[Message[dict]]) -> list[str]:
        calls.append(len(batch))
        if clock.now < 5:  # the database is down for the first 5 seconds
            raise RetryableError("database down")
        return [m.key for m in batch]

    letters, sink = RecordingDeadLetters(), RecordingSink()
    before = metric("streams_consumer_transient_retries_total", "outage")
    others = metric("streams_consumer_retries_total", "outage")
    await processor(handler, clock, agent="outage", dead_letters=letters,
                    sink=sink).process([event(i, {"n": i}) for i in range(8)])

    # far more calls than max_retries=3, each with the whole batch: nothing was split
    assert calls == [8] * len(calls) and len(calls) > 4
    assert clock.sleeps[:4] == [0.1, 0.2, 0.4, 0.5]      # the agent's backoff, capped
    assert letters.letters == []
    assert sink.outputs == [f"k{i}" for i in range(8)]    # every record handled once
    assert metric("streams_consumer_transient_retries_total", "outage") - before == \
        len(calls) - 1
    assert metric("streams_consumer_retries_total", "outage") == others
    assert metric("streams_consumer_transient_waiting", "outage") == 0
    assert WAITING.summary() == []


async def test_declared_transient_types_are_waited_out_and_others_split_as_before() -> None:
    clock = Clock()
    down = True

    async def handler(batch: list[Message[dict]]) -> list[int]:
        if down and clock.now < 2:
            raise ConnectionError("refused")
        if any(m.value["bad"] for m in batch):
            raise ValueError("bad record")
        return [m.offset for m in batch]

    letters, sink = RecordingDeadLetters(), RecordingSink()
    await processor(handler, clock, transient=(ConnectionError,), dead_letters=letters,
                    sink=sink).process([event(i, {"bad": i == 2}) for i in range(4)])
    assert [offset for offset, _, _ in letters.letters] == [2]
    assert letters.letters[0][1] == "bad record"
    assert sorted(sink.outputs) == [0, 1, 3]


async def test_a_part_failing_transiently_while_splitting_is_not_dead_lettered() -> None:
    clock = Clock()
    calls = 0

    async def handler(batch: list[Message[dict]]) -> list[int]:
        nonlocal calls
        calls += 1
        if len(batch) == 4:
            raise ValueError("the whole batch fails")
        if calls == 6:  # the database goes away during the split
            raise RetryableError("database down")
        return [m.offset for m in batch]

    letters, sink = RecordingDeadLetters(), RecordingSink()
    await processor(handler, clock, dead_letters=letters,
                    sink=sink).process([event(i, {}) for i in range(4)])
    assert letters.letters == []
    assert sorted(sink.outputs) == [0, 1, 2, 3]


async def test_the_failed_calls_table_changes_are_rolled_back() -> None:
    clock = Clock()
    table = SimpleNamespace(name="totals")

    async def handler(batch: list[Message[dict]]) -> None:
        writes = table_writes.current()
        assert writes is not None
        seen = writes.get(table, b"k")
        count = 1 if seen is None else seen.value + 1
        writes.put(table_writes.Change(table, 0, "k", count, b"k", b""))
        if clock.now < 1:
            raise RetryableError("down")

    writes = table_writes.PendingWrites()
    with table_writes.collecting(writes):
        await processor(handler, clock).process([event(0, {})])
    change = writes.get(table, b"k")
    assert change is not None and change.value == 1


async def test_ready_reasons_name_agent_partitions_error_and_start_while_waiting() -> None:
    clock = Clock()
    seen: list[list[dict[str, Any]]] = []

    async def handler(batch: list[Message[dict]]) -> None:
        seen.append(WAITING.summary())
        if clock.now < 1:
            raise RetryableError("orders database unreachable")

    await processor(handler, clock, agent="waiting").process(
        [event(0, {}, partition=2), event(1, {}, partition=0)])
    wait = seen[-1][0]
    assert wait["agent"] == "waiting"
    assert wait["partitions"] == ["items[0]", "items[2]"]
    assert wait["error"] == "RetryableError: orders database unreachable"
    assert wait["since"].endswith("+00:00") and wait["retries"] >= 1
    assert seen[0] == []


async def test_after_the_deadline_the_batch_stops_without_dead_letters() -> None:
    clock = Clock()

    async def handler(batch: list[Message[dict]]) -> None:
        raise RetryableError("still down")

    letters = RecordingDeadLetters()
    with pytest.raises(TransientDeadlineError, match="TRANSIENT_RETRY_DEADLINE_S"):
        await processor(handler, clock, deadline=10, dead_letters=letters).process(
            [event(i, {}) for i in range(3)])
    assert clock.now == pytest.approx(10)
    assert letters.letters == []
    assert WAITING.summary() == []


async def test_dead_letters_off_does_not_stop_the_worker_for_a_transient_failure() -> None:
    clock = Clock()

    async def handler(batch: list[Message[dict]]) -> None:
        if clock.now < 3:
            raise RetryableError("down")

    await processor(handler, clock, dead_letters=None).process([event(0, {})])

    async def broken(batch: list[Message[dict]]) -> None:
        raise ValueError("bad")

    with pytest.raises(HandlerFailedError):
        await processor(broken, clock, dead_letters=None).process([event(0, {})])


async def test_giving_up_the_partitions_ends_the_wait_unacknowledged() -> None:
    clock = Clock()

    async def handler(batch: list[Message[dict]]) -> None:
        raise RetryableError("down")

    letters = RecordingDeadLetters()
    with pytest.raises(BatchAbandoned, match="left unacknowledged"):
        # a rebalance starts 3 s into a 10 s backoff: the wait ends within a second
        await processor(handler, clock, dead_letters=letters, backoff=Backoff(10, 2, 60),
                        giving_up=lambda: clock.now >= 3).process([event(0, {})])
    assert clock.now == pytest.approx(3)
    assert letters.letters == []
    assert WAITING.summary() == []


def test_transient_takes_exception_types() -> None:
    async def handler(batch: list[Message[Any]]) -> None: ...

    agent = batch_agent("t", transient=(ConnectionError,), register=False)(handler)
    assert agent.transient == (ConnectionError,)
    with pytest.raises(ValueError, match="transient takes exception types"):
        batch_agent("t", transient=("ConnectionError",), register=False)(handler)  # type: ignore[arg-type]


def test_the_test_kit_waits_out_a_transient_failure_and_ends_a_permanent_one() -> None:
    calls = 0

    @batch_agent("kit-orders", value_type=dict, sink="kit-out", register=False)
    async def flaky(batch: list[Message[dict]]) -> list[Any]:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise RetryableError("database down")
        return [(m.key, m.value) for m in batch]

    result = run_agent(flaky, [("a", {"n": 1}), ("b", {"n": 2})], batch_size=10)
    assert sorted(v["n"] for v in result.sink_values) == [1, 2]
    assert result.dead_letters == []
    assert len(result.retries) == 5  # more than max_retries, not waited

    @batch_agent("kit-orders", value_type=dict, transient=(ConnectionError,),
                 register=False)
    async def down(batch: list[Message[dict]]) -> None:
        raise ConnectionError("refused")

    with pytest.raises(TransientDeadlineError, match="TRANSIENT_RETRY_DEADLINE_S"):
        run_agent(down, [("a", {"n": 1})])
