"""The pipeline of batches: handled while the previous one is acknowledged, finished in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from streams.processing.pipeline import BatchPipeline, PipelineStopped


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

