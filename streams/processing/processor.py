"""What happens to one batch: decode, call the handler with retries, isolate bad records.

1. Records whose key or value does not decode are dead-lettered at once (a retry cannot
   fix them).
2. The handler gets the decoded batch; on an exception it is retried with backoff up to
   `max_retries` times. A transient failure (`RetryableError`, or one of the agent's
   `transient` types) is not one of those: the call is repeated with backoff until it
   succeeds while the partitions wait, and nothing is dead-lettered for it
   (streams.processing.transient).
3. If it still fails, the batch is split in halves, recursively: a part that succeeds is
   done (each good record is handled by exactly one successful call), a single record that
   fails on its own is dead-lettered with the error (a table key on the wrong partition
   is also counted by streams.state.placement). Without a dead-letter topic nothing is
   split: `HandlerFailedError` stops the worker before anything of the batch is acked.
4. Records the successful calls returned are handed to the sink topic's producer
   (`start`), or also acknowledged (`process`).

Table changes a call made (streams.state.writes) are rolled back when it raises, so every
record's changes count once, from the one call that handled it.

Only when this returns may the caller acknowledge the batch's events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streams.backoff import Backoff
from streams.errors import (
    HandlerFailedError,
    KeyPlacementError,
    TransientWaitEnded,
)
from streams.observability import metrics
from streams.processing.models import Message, MessageDecoder
from streams.processing.transient import TransientRetry
from streams.state import writes as table_writes
from streams.state.placement import MISPLACED

log = logging.getLogger(__name__)

Handler = Callable[[list[Message[Any]]], Awaitable[Sequence[Any] | None]]


class DeadLetters(Protocol):
    async def send(self, event: Any, error: BaseException, attempts: int) -> None: ...


class Sink(Protocol):
    async def send(self, outputs: Sequence[Any]) -> Awaitable[object]:
        """Hand `outputs` to the producer; return what waits for their acknowledgement."""


@dataclass
class BatchProcessor:
    """Processes batches of one agent; stateless between batches."""

    agent: str
    handler: Handler
    value_type: type[Any] | None
    key_type: type[Any] | None
    max_retries: int
    backoff: Backoff
    dead_letters: DeadLetters | None
    sink: Sink | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    transient: tuple[type[BaseException], ...] = ()
    transient_deadline_s: float | None = None
    #: True when the batch's partitions are being given up (ends a transient wait)
    giving_up: Callable[[], bool] | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._to_message = MessageDecoder[Any](self.value_type, self.key_type)
        self._transient = TransientRetry(self.agent, self.transient, self.backoff,
                                         self.transient_deadline_s, self.sleep,
                                         self.giving_up, self.clock)

    async def process(self, events: Sequence[Any]) -> None:
        """Handle every event of the batch, or raise `HandlerFailedError` (or
        `TransientWaitEnded`: the batch stopped waiting on a transient failure); returns
        once the sink records are acknowledged."""
        await (await self.start(events))

    async def start(self, events: Sequence[Any]) -> Awaitable[object]:
        """As `process`, but returns once the sink records are handed to the producer:
        the result waits for their acknowledgement."""
        messages = await self._decode(events)
        if not messages:
            return _done()
        started = time.perf_counter()
        metrics.CONSUMER_BATCH_SIZE.labels(self.agent).observe(len(messages))
        try:
            outputs = await self._attempts(messages, self.max_retries)
        except _Failed as failure:
            if self.dead_letters is None:
                raise HandlerFailedError(
                    f"agent {self.agent}: batch {_span(messages)} ({len(messages)} records) "
                    f"failed {failure.attempts} times: {type(failure.error).__name__}: "
                    f"{failure.error}; dead letters are off, so the worker stops and nothing "
                    "of this batch is committed") from failure.error
            outputs = await self._isolate(messages, failure.attempts, failure.error)
        finally:
            metrics.CONSUMER_BATCH_SECONDS.labels(self.agent).observe(
                time.perf_counter() - started)
        if outputs and self.sink is not None:
            return await self.sink.send(outputs)
        return _done()

    async def _decode(self, events: Sequence[Any]) -> list[Message[Any]]:
        messages, failed = self._to_message.decode_all(events)
        for event, error in failed:
            await self._give_up(event, error, attempts=1)
        return messages

    async def _attempts(self, messages: list[Message[Any]], retries: int) -> list[Any]:
        """Call the handler up to 1 + `retries` times; return its outputs or raise `_Failed`."""
        writes = table_writes.current()
        for attempt in range(retries + 1):
            savepoint = writes.savepoint() if writes is not None else None
            try:
                return list(await self._transient.call(self.handler, messages) or ())
            except (asyncio.CancelledError, TransientWaitEnded):
                raise
            except Exception as exc:
                if writes is not None and savepoint is not None:
                    writes.rollback(savepoint)  # the failed call's table changes
                if attempt == retries:
                    raise _Failed(exc, attempt + 1) from exc
                delay = self.backoff.delay(attempt)
                metrics.CONSUMER_RETRIES.labels(self.agent).inc()
                log.warning("agent %s: handler failed on %s (%d records): %r; retry %d/%d "
                            "in %.2fs", self.agent, _span(messages), len(messages), exc,
                            attempt + 1, retries, delay, extra=_extra(self.agent, messages[0]))
                await self.sleep(delay)
        raise AssertionError("unreachable")

    async def _isolate(self, messages: list[Message[Any]], calls: int,
                       error: BaseException) -> list[Any]:
        """Split until each failing record stands alone; handle the rest once.

        `calls` counts the handler calls that included these records so far (it becomes
        the dead letter's `x-attempts`), `error` is what the last of them raised. Parts get
        one call each: the whole batch already had its retries, so what fails now fails
        for its own content.
        """
        if len(messages) == 1:
            await self._give_up(messages[0].event, error, calls)
            return []
        middle = len(messages) // 2
        outputs = []
        for part in (messages[:middle], messages[middle:]):
            try:
                outputs += await self._attempts(part, 0)
            except _Failed as failure:
                outputs += await self._isolate(part, calls + 1, failure.error)
        return outputs

    async def _give_up(self, event: Any, error: BaseException, attempts: int) -> None:
        record = event.message
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if self.dead_letters is None:
            raise HandlerFailedError(
                f"agent {self.agent}: {where} cannot be decoded: {error}; dead letters are "
                "off, so the worker stops and nothing from this offset on is committed")
        await self.dead_letters.send(event, error, attempts)
        metrics.DEAD_LETTERS.labels(record.topic, type(error).__name__).inc()
        if isinstance(error, KeyPlacementError):
            MISPLACED.record(error)


def _done() -> asyncio.Future[object]:
    """Nothing to wait for."""
    done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class _Failed(Exception):
    def __init__(self, error: BaseException, attempts: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


def _span(messages: Sequence[Message[Any]]) -> str:
    first, last = messages[0], messages[-1]
    if first.partition == last.partition:
        return f"{first.topic}[{first.partition}]@{first.offset}..{last.offset}"
    return f"{first.topic} offsets {first.coordinates}..{last.coordinates}"


def _extra(agent: str, message: Message[Any]) -> dict[str, Any]:
    return {"agent": agent, "topic": message.topic, "partition": message.partition,
            "offset": message.offset}
