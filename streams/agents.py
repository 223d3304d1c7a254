"""`@batch_agent`: a handler that receives decoded batches of one topic.

The decorator only registers a `BatchAgent`; `create_app` binds it to the Faust app as an
agent that reads the topic as raw bytes, groups events with Faust's stream batching
(`batch_size` events, or what arrived within `flush_interval` seconds), turns them into
platform `Message`s and calls the handler.

Acknowledgement, which is what lets Faust commit an offset, happens only after the handler
returned. Faust's `take`/`take_events` ack their buffered events in a `finally:` (also when
the handler raised), so the agent uses `noack_take` (the same buffering, yielding events)
and acks each event itself once its batch is done. A handler that keeps failing after its
retries stops the worker without acking: the batch is fetched again after restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust

from streams.dead_letters import DeadLetterSink, dead_letter_topic_name
from streams.errors import DecodeError, StreamsError
from streams.models import Message, to_message
from streams.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
BatchHandler = Callable[[list[Message[Any]]], Awaitable[None]]

#: Agents declared at import time of the deployment's modules, bound by `create_app`.
DECLARED_AGENTS: list[BatchAgent] = []


class HandlerFailedError(StreamsError):
    """A batch handler kept failing after its retries; nothing of the batch was acked."""


@dataclass(eq=False)
class BatchAgent:
    """A registered batch handler and how to feed it. Build it with `@batch_agent`."""

    topic: str
    handler: BatchHandler
    value_type: type[Any] | None = None
    key_type: type[Any] | None = str
    batch_size: int | None = None
    flush_interval: float | None = None
    max_retries: int | None = None
    concurrency: int = 1
    name: str = ""
    _agent: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{self.handler.__module__}.{self.handler.__qualname__}"
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_agent {self.name}: batch_size must be >= 1")
        if self.flush_interval is not None and self.flush_interval <= 0:
            raise ValueError(f"batch_agent {self.name}: flush_interval must be > 0")
        if self.concurrency < 1:
            raise ValueError(f"batch_agent {self.name}: concurrency must be >= 1")

    def topic_names(self) -> list[str]:
        """The source topic and its dead-letter topic."""
        return [self.topic, dead_letter_topic_name(self.topic)]

    async def __call__(self, batch: list[Message[Any]]) -> None:
        """Call the handler directly (unit tests of handler logic)."""
        await self.handler(batch)

    def bind(self, app: faust.App, settings: Settings) -> None:
        """Create the topic and the Faust agent on `app` (called by `create_app`)."""
        topic = app.topic(
            self.topic,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
            replicas=settings.topic_replication,
        )
        batch_size = self.batch_size or settings.batch_size
        within = self.flush_interval or settings.flush_interval
        retries = settings.flush_max_retries if self.max_retries is None else self.max_retries
        backoff = settings.retry_backoff_ms / 1000

        dead_letters = DeadLetterSink(app, self.topic, partitions=settings.topic_partitions,
                                      replicas=settings.topic_replication)

        async def consume(stream: Any) -> None:
            async for events in stream.noack_take(batch_size, within=within):
                messages = await self._decode(events, dead_letters)
                if messages:
                    await self._handle(app, messages, retries, backoff)
                for event in events:
                    await stream.ack(event)

        consume.__name__ = consume.__qualname__ = self.name.replace(".", "_")
        self._agent = app.agent(topic, name=self.name, concurrency=self.concurrency)(consume)

    async def _handle(self, app: faust.App, messages: list[Message[Any]], retries: int,
                      backoff: float) -> None:
        attempt = 0
        while True:
            try:
                await self.handler(messages)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                first, last = messages[0], messages[-1]
                if attempt >= retries:
                    message = (f"agent {self.name}: handler failed {attempt + 1} times on "
                               f"{first.topic} offsets {first.partition}:{first.offset}.."
                               f"{last.partition}:{last.offset}: {exc!r}; nothing of this "
                               "batch is committed, stopping the worker")
                    log.error(message)
                    await app.crash(HandlerFailedError(message))
                    raise HandlerFailedError(message) from exc
                delay = backoff * (2 ** attempt)
                log.warning("agent %s: handler failed (%r), retry %d/%d in %.2fs",
                            self.name, exc, attempt + 1, retries, delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def _decode(self, events: Sequence[Any], dead_letters: DeadLetterSink,
                      ) -> list[Message[Any]]:
        """Decode every event; the ones that don't decode go to the dead-letter topic."""
        messages = []
        for event in events:
            try:
                messages.append(to_message(event, self.value_type, self.key_type))
            except DecodeError as exc:
                await dead_letters.send(event, exc, attempts=1)
        return messages


def batch_agent(
    topic: str,
    *,
    value_type: type[Any] | None = None,
    key_type: type[Any] | None = str,
    batch_size: int | None = None,
    flush_interval: float | None = None,
    max_retries: int | None = None,
    concurrency: int = 1,
    name: str | None = None,
    register: bool = True,
) -> Callable[[BatchHandler], BatchAgent]:
    """Declare a batch handler of `topic`.

    `batch_size`, `flush_interval` (seconds) and `max_retries` default to the settings
    BATCH_SIZE, FLUSH_INTERVAL_MS and FLUSH_MAX_RETRIES (the seed's readBatchSize 100,
    flushInterval 1000 ms, flushMaxRetries 3). `register=False` skips the module-level
    registry: pass the agent to `create_app(agents=[...])` yourself.
    """

    def decorate(handler: BatchHandler) -> BatchAgent:
        agent = BatchAgent(
            topic=topic, handler=handler, value_type=value_type, key_type=key_type,
            batch_size=batch_size, flush_interval=flush_interval, max_retries=max_retries,
            concurrency=concurrency, name=name or "",
        )
        if register:
            DECLARED_AGENTS.append(agent)
        return agent

    return decorate
