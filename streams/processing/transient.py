"""Transient handler failures: waited out, never dead-lettered.

A transient failure (`RetryableError`, or an exception type the agent declares with
`@batch_agent(..., transient=(...))`) says nothing about the records: a database or a
service is down. Splitting the batch would fail every part the same way and empty the topic
into its dead-letter topic. So the handler is called again with the agent's backoff until it
succeeds, while nothing further of the agent's partitions is handled (its queue fills up and
fetching of those partitions pauses), and:

- `TRANSIENT_RETRY_DEADLINE_S` after the first failure of the wait, `TransientDeadlineError`
  stops the worker without committing anything of the batch (0: no deadline);
- when the batch's partitions are being given up (rebalance, shutdown), `BatchAbandoned`
  leaves the batch unacknowledged for the partitions' next owner.

`WAITING` lists the batches waiting now, for `/ready`; the metrics
`streams_consumer_transient_retries_total{agent}` and
`streams_consumer_transient_waiting{agent}` count them apart from other retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.backoff import Backoff
from streams.errors import (
    BatchAbandoned,
    RetryableError,
    TransientDeadlineError,
)
from streams.observability import metrics
from streams.processing.models import Message
from streams.state import writes as table_writes

log = logging.getLogger(__name__)


@dataclass
class TransientWait:
    """One batch waiting on a transient failure."""

    agent: str
    partitions: tuple[str, ...]
    since: float = field(default_factory=time.time)
    retries: int = 0
    error: str = ""

    def describe(self) -> dict[str, Any]:
        return {"agent": self.agent, "partitions": list(self.partitions), "error": self.error,
                "since": _iso(self.since), "waited_s": round(time.time() - self.since, 1),
                "retries": self.retries}

    def reason(self) -> str:
        return (f"agent {self.agent} waits on a transient failure on "
                f"{', '.join(self.partitions)} since {_iso(self.since)} "
                f"({time.time() - self.since:.0f}s, {self.retries} retries): {self.error}")


class TransientWaits:
    """The batches of this process waiting on a transient failure now."""

    def __init__(self) -> None:
        self._waits: list[TransientWait] = []

    def begin(self, agent: str, messages: Sequence[Message[Any]]) -> TransientWait:
        partitions = sorted({(m.topic, m.partition) for m in messages})
        wait = TransientWait(agent, tuple(f"{topic}[{p}]" for topic, p in partitions))
        self._waits.append(wait)
        metrics.CONSUMER_TRANSIENT_WAITING.labels(agent).inc()
        return wait

    def end(self, wait: TransientWait) -> None:
        self._waits.remove(wait)
        metrics.CONSUMER_TRANSIENT_WAITING.labels(wait.agent).dec()

    def summary(self) -> list[dict[str, Any]]:
        return [wait.describe() for wait in self._waits]

    def reasons(self) -> list[str]:
        return [wait.reason() for wait in self._waits]


#: The waits of this process (one per waiting agent instance).
WAITING = TransientWaits()


@dataclass
class TransientRetry:
    """Calls a handler until it returns or fails with something other than a transient
    failure; see the module docstring."""

    agent: str
    types: tuple[type[BaseException], ...]
    backoff: Backoff
    deadline_s: float | None
    sleep: Callable[[float], Awaitable[None]]
    #: True when the batch's partitions are being given up (checked at least every `step_s`;
    #: None: nothing ends a wait early, each delay is one sleep)
    giving_up: Callable[[], bool] | None = None
    clock: Callable[[], float] = time.monotonic
    step_s: float = 1.0

    def is_transient(self, error: BaseException) -> bool:
        return isinstance(error, (RetryableError, *self.types))

    async def call(self, handler: Callable[[list[Message[Any]]], Awaitable[Any]],
                   messages: list[Message[Any]]) -> Any:
        writes = table_writes.current()
        wait: TransientWait | None = None
        started = 0.0  # when the first transient failure of this call ended
        try:
            while True:
                savepoint = writes.savepoint() if writes is not None else None
                try:
                    result = await handler(messages)
                except Exception as exc:
                    if not self.is_transient(exc):
                        raise
                    if writes is not None and savepoint is not None:
                        writes.rollback(savepoint)  # the failed call's table changes
                    if wait is None:
                        wait, started = WAITING.begin(self.agent, messages), self.clock()
                    wait.error = f"{type(exc).__name__}: {exc}"
                    await self._pause(wait, started, messages)
                    continue
                if wait is not None:
                    log.info("agent %s: handler recovered on %s after %d transient retries "
                             "(%.1fs)", self.agent, ", ".join(wait.partitions), wait.retries,
                             self.clock() - started, extra={"agent": self.agent})
                return result
        finally:
            if wait is not None:
                WAITING.end(wait)

    async def _pause(self, wait: TransientWait, started: float,
                     messages: list[Message[Any]]) -> None:
        """Wait before the next call, or raise `TransientWaitEnded`."""
        where = f"{len(messages)} records of {', '.join(wait.partitions)}"
        delay = self.backoff.delay(wait.retries)
        if self.deadline_s is not None:
            left = self.deadline_s - (self.clock() - started)
            if left <= 0:
                raise TransientDeadlineError(
                    f"agent {self.agent}: handler still failing after {wait.retries} transient "
                    f"retries in {self.deadline_s:.0f}s (TRANSIENT_RETRY_DEADLINE_S) on "
                    f"{where}: {wait.error}; the worker stops and nothing of the batch is "
                    "committed")
            delay = min(delay, left)
        wait.retries += 1
        metrics.CONSUMER_TRANSIENT_RETRIES.labels(self.agent).inc()
        log.warning("agent %s: transient failure on %s: %s; partitions wait, nothing is "
                    "dead-lettered; retry %d in %.2fs", self.agent, where, wait.error,
                    wait.retries, delay, extra={"agent": self.agent})
        if self.giving_up is None:
            await self.sleep(delay)
            return
        while True:
            if self.giving_up():
                raise BatchAbandoned(
                    f"agent {self.agent}: {where} left unacknowledged while waiting on a "
                    f"transient failure ({wait.error}): the partitions are being given up")
            if delay <= 0:
                return
            step = min(delay, self.step_s)
            await self.sleep(step)
            delay -= step


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
