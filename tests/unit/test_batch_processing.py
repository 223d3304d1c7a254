"""Batch processing logic without Kafka: retries, backoff, splitting, dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any

import pytest

from streams import Settings, batch_agent, create_app
from streams.backoff import Backoff
from streams.errors import HandlerFailedError
from streams.processing.models import Message
from streams.processing.processor import BatchProcessor


def event(offset: int, value: Any, partition: int = 0) -> Any:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    record = SimpleNamespace(topic="items", partition=partition, offset=offset,
                             key=f"k{offset}".encode(), value=raw, timestamp=0.0,
                             headers=[("trace", b"t1")])
    return SimpleNamespace(message=record)


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.letters: list[tuple[int, str, int]] = []

    async def send(self, event: Any, error: BaseException, attempts: int) -> None:
        self.letters.append((event.message.offset, str(error), attempts))


class RecordingSink:
    def __init__(self) -> None:
        self.outputs: list[Any] = []

    async def send(self, outputs: list[Any]) -> Awaitable[None]:
        self.outputs.extend(outputs)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def processor(handler: Any, *, retries: int = 3, dead_letters: Any = None,
              sink: Any = None) -> tuple[BatchProcessor, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return BatchProcessor(agent="test", handler=handler, value_type=dict, key_type=str,
                          max_retries=retries, backoff=Backoff(0.1, 2.0, 0.5),
                          dead_letters=dead_letters, sink=sink, sleep=sleep), sleeps


def test_backoff_doubles_up_to_the_cap() -> None:
    assert Backoff(0.2, 2.0, 1.0).schedule(5) == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert Backoff(0.2, 10.0, 1.0).delay(10_000) == 1.0  # past what a float holds
    with pytest.raises(ValueError):
        Backoff(initial=1.0, factor=2.0, maximum=0.5)


async def test_transient_failure_is_retried_with_backoff_and_handled_once() -> None:
    calls: list[int] = []

    async def handler(batch: list[Message[dict]]) -> list[str]:
        calls.append(len(batch))
        if len(calls) < 3:
            raise ConnectionError("database briefly away")
        return [m.key for m in batch]

    sink = RecordingSink()
    batch_processor, sleeps = processor(handler, dead_letters=RecordingDeadLetters(),
                                        sink=sink)
    await batch_processor.process([event(i, {"n": i}) for i in range(4)])
    assert calls == [4, 4, 4]
    assert sleeps == [0.1, 0.2]
    assert sink.outputs == ["k0", "k1", "k2", "k3"]


async def test_splitting_isolates_exactly_the_bad_records() -> None:
    bad = {3, 11, 12}
    handled: list[int] = []

    async def handler(batch: list[Message[dict]]) -> None:
        failing = [m.value["n"] for m in batch if m.value["n"] in bad]
        if failing:
            raise ValueError(f"cannot handle {failing[0]}")
        handled.extend(m.value["n"] for m in batch)

    dead_letters = RecordingDeadLetters()
    batch_processor, sleeps = processor(handler, dead_letters=dead_letters)
    await batch_processor.process([event(i, {"n": i}) for i in range(16)])

    assert sorted(handled) == sorted(set(range(16)) - bad)
    assert len(handled) == len(set(handled)), "a good record was handled twice"
    assert handled == sorted(handled), "good records keep their order"
    assert [(offset, error) for offset, error, _ in dead_letters.letters] == [
        (3, "cannot handle 3"), (11, "cannot handle 11"), (12, "cannot handle 12")]
    assert all(attempts > 4 for _, _, attempts in dead_letters.letters)
    assert sleeps == [0.1, 0.2, 0.4], "only the whole batch waits between retries"


async def test_undecodable_records_are_dead_lettered_without_calling_the_handler() -> None:
    seen: list[int] = []

    async def handler(batch: list[Message[dict]]) -> None:
        seen.extend(m.offset for m in batch)

    dead_letters = RecordingDeadLetters()
    batch_processor, _ = processor(handler, dead_letters=dead_letters)
    await batch_processor.process([event(0, {"n": 0}), event(1, b"{oops"), event(2, {"n": 2})])
    assert seen == [0, 2]
    assert [(o, a) for o, _, a in dead_letters.letters] == [(1, 1)]
    assert "items[0]@1: value is not valid JSON" in dead_letters.letters[0][1]


async def test_without_dead_letters_a_failing_batch_stops_with_its_span() -> None:
    async def handler(batch: list[Message[dict]]) -> None:
        raise RuntimeError("bug")

    batch_processor, _ = processor(handler, retries=1)
    with pytest.raises(HandlerFailedError, match=r"items\[0\]@5..7 \(3 records\) failed 2 "
                                                 r"times: RuntimeError: bug"):
        await batch_processor.process([event(i, {"n": i}) for i in (5, 6, 7)])


async def test_batches_are_cut_by_size_and_by_flush_interval() -> None:
    sizes: list[int] = []

    @batch_agent("sized", value_type=dict, batch_size=100, flush_interval=0.2, register=False)
    async def handle(batch: list[Message[dict]]) -> None:
        sizes.append(len(batch))

    create_app(Settings.from_env({"TABLE_STORE": "memory", "APP_ID": "unit-batching"}),
               agents=[handle], tables=[])
    async with handle._agent.test_context() as agent:
        loop = asyncio.get_running_loop()
        for i in range(250):
            await agent.put(key=b"k", value=json.dumps({"i": i}).encode(), wait=False)
        deadline = loop.time() + 10
        while sum(sizes) < 250 and loop.time() < deadline:
            await asyncio.sleep(0.02)
    assert sizes[:2] == [100, 100], "full batches are cut at batch_size"
    assert sum(sizes) == 250, "the rest is flushed after flush_interval"


async def test_poison_records_are_dead_lettered_and_the_batch_goes_on() -> None:
    """100,000 `[` bytes once made decoding raise RecursionError and stop the worker."""
    seen: list[int] = []

    async def handler(batch: list[Message[dict]]) -> None:
        seen.extend(m.offset for m in batch)

    poison = event(1, b"[" * 100_000)
    out_of_range = event(2, {"n": 2})
    out_of_range.message.timestamp = 1e20
    dead_letters = RecordingDeadLetters()
    batch_processor, _ = processor(handler, dead_letters=dead_letters)
    await batch_processor.process([event(0, {"n": 0}), poison, out_of_range, event(3, {"n": 3})])
    assert seen == [0, 3]
    assert [(offset, attempts) for offset, _, attempts in dead_letters.letters] == [(1, 1), (2, 1)]
    assert "nested deeper than 64 levels" in dead_letters.letters[0][1]
