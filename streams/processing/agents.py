"""`@batch_agent`: a handler that receives decoded batches of one topic.

The decorator only registers a `BatchAgent`; `create_app` binds it to the Faust app as an
agent that reads the topic as raw bytes. Faust's conductor fetches and routes the records;
the agent takes them from the topic's queue in batches (`batch_size` events, or what
arrived within `flush_interval` seconds; see streams.processing.reader for why not through
`Stream.take`) and hands each batch to a `BatchProcessor` (decode, retries, dead letters,
table writes, sink; see streams.processing.processor).

Acknowledgement, which is what lets Faust commit an offset, happens only after the whole
batch was handled or dead-lettered and its table changes and sink records were
acknowledged by the brokers. (Faust's `take`/`take_events` ack their buffered events in a
`finally:`, also when the handler raised; this agent never does.)

On shutdown (SIGTERM, Ctrl-C) the worker stops fetching and gives the batch in hand
`SHUTDOWN_TIMEOUT_S` to finish (see `PlatformApp`); a batch cancelled after that is
abandoned unacknowledged and comes back after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust

from streams._faust.events import ack_all, let_go_all
from streams._faust.producers import aiokafka_producer
from streams.backoff import Backoff
from streams.errors import (
    BatchAbandoned,
    HandlerFailedError,
    TransactionFailedError,
    TransientDeadlineError,
)
from streams.kafka.partitioner import Partitioner
from streams.kafka.publisher import Outgoing, encode_headers, encode_value
from streams.kafka.record_batches import BatchProducer, Record, send_batches
from streams.observability import metrics
from streams.processing.consumer import BatchingConsumer
from streams.processing.dead_letters import DeadLetterSink, dead_letter_topic_name
from streams.processing.models import check_decodable
from streams.processing.pipeline import BatchPipeline, PipelineStopped
from streams.processing.processor import BatchProcessor, Handler
from streams.processing.reader import BatchReader
from streams.processing.transactions import (
    current_transactional_id,
    in_transactions,
    transactions_enabled,
)
from streams.settings import Settings
from streams.state import writes as table_writes

log = logging.getLogger(__name__)

#: Agents declared at import time of the deployment's modules, bound by `create_app`.
DECLARED_AGENTS: list[BatchAgent] = []


@dataclass(eq=False)
class BatchAgent:
    """A registered batch handler and how to feed it. Build it with `@batch_agent`."""

    topic: str
    handler: Handler
    value_type: type[Any] | None = None
    key_type: type[Any] | None = str
    batch_size: int | None = None
    flush_interval: float | None = None
    max_retries: int | None = None
    backoff: Backoff | None = None
    dead_letter: bool = True
    sink: str | None = None
    concurrency: int = 1
    name: str = ""
    transient: tuple[type[BaseException], ...] = ()
    _agent: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{self.handler.__module__}.{self.handler.__qualname__}"
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_agent {self.name}: batch_size must be >= 1")
        if self.flush_interval is not None and self.flush_interval <= 0:
            raise ValueError(f"batch_agent {self.name}: flush_interval must be > 0")
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError(f"batch_agent {self.name}: max_retries must be >= 0")
        if self.concurrency < 1:
            raise ValueError(f"batch_agent {self.name}: concurrency must be >= 1")
        if not all(isinstance(t, type) and issubclass(t, Exception) for t in self.transient):
            raise ValueError(f"batch_agent {self.name}: transient takes exception types")
        check_decodable(self.value_type, f"batch_agent {self.name} value")
        check_decodable(self.key_type, f"batch_agent {self.name} key")

    def topic_names(self) -> list[str]:
        """Every topic the agent reads or writes: source, dead letters, sink."""
        names = [self.topic]
        if self.dead_letter:
            names.append(dead_letter_topic_name(self.topic))
        if self.sink:
            names.append(self.sink)
        return names

    async def __call__(self, batch: list[Any]) -> Sequence[Any] | None:
        """Call the handler directly (unit tests of handler logic)."""
        return await self.handler(batch)

    def bind(self, app: faust.App, settings: Settings) -> None:
        """Create the topics and the Faust agent on `app` (called by `create_app`)."""
        source = _raw_topic(app, self.topic, settings)
        processor = BatchProcessor(
            agent=self.name,
            handler=self.handler,
            value_type=self.value_type,
            key_type=self.key_type,
            max_retries=(settings.flush_max_retries if self.max_retries is None
                         else self.max_retries),
            backoff=self.backoff or Backoff(initial=settings.retry_backoff_ms / 1000),
            dead_letters=(DeadLetterSink(_raw_topic(app, dead_letter_topic_name(self.topic),
                                                    settings))
                          if self.dead_letter else None),
            sink=_worker_sink(app, self.sink, settings) if self.sink else None,
            transient=self.transient,
            transient_deadline_s=settings.transient_retry_deadline_s or None,
            # Faust suspends the flow when partitions are revoked and on shutdown
            giving_up=lambda: not app.flow_control.is_active(),
        )
        batch_size = self.batch_size or settings.batch_size
        within = self.flush_interval or settings.flush_interval

        async def process_with_tables(events: Sequence[Any]) -> None:
            writes = table_writes.PendingWrites()
            with table_writes.collecting(writes):
                await processor.process(events)
            await writes.commit(app)

        # exactly_once: one transaction per source partition of the batch, holding its
        # sink records, dead letters, changelog records and offsets (see transactions.py);
        # at_least_once: the next batch is handled while one is acknowledged (pipeline.py)
        pipelined = not transactions_enabled(app)
        process = in_transactions(app, process_with_tables)

        def acknowledge(events: Sequence[Any]) -> None:
            _ack_all(app, events, self.name)

        async def fail(exc: BaseException) -> None:
            # A batch that cannot be finished (handler failed without dead letters, dead
            # letters, sink or changelog not acknowledged, transaction not committed) must
            # not be acked: the worker stops and the batch is read again after a restart.
            if isinstance(exc, HandlerFailedError | TransactionFailedError
                          | TransientDeadlineError):
                log.critical("%s", exc, extra={"agent": self.name})
            else:
                log.critical("agent %s: batch could not be completed: %r; the worker "
                             "stops, nothing of the batch is committed", self.name, exc,
                             extra={"agent": self.name})
            _exit_unless_stopped(settings.shutdown_timeout_s + 15)
            await app.crash(exc)

        async def consume(stream: Any) -> None:
            # Iterating a topic channel registers it with the conductor (the subscription);
            # the consumer then puts the topic's records on its queue directly.
            channel = aiter(stream.channel)
            if isinstance(app.consumer, BatchingConsumer):
                app.consumer.deliver_to(self.topic, channel.queue)
            reader = BatchReader(app, channel, batch_size, within)

            def caught_up() -> bool:
                consumer = app.consumer
                return (reader.empty() and isinstance(consumer, BatchingConsumer)
                        and consumer.caught_up(self.topic))

            pipeline = (BatchPipeline(app, processor, acknowledge, fail,
                                      commit_interval=settings.commit_interval)
                        if pipelined else None)
            try:
                while True:
                    try:
                        events = await reader.next_batch(
                            _first_within(app, pipeline, caught_up))
                    except StopAsyncIteration:  # the agent's stream is stopping
                        if pipeline is not None:
                            await pipeline.drain()
                        return
                    try:
                        if pipeline is not None and not events:
                            # due, its partitions being given up, or caught up: every
                            # record fetched is handled, or none came within _IDLE_CHECK_S
                            await pipeline.commit()
                        elif pipeline is not None:
                            await pipeline.submit(events)
                        else:
                            await process(events)
                            acknowledge(events)
                    except BatchAbandoned as exc:
                        # not acked: the partitions' next owner (or a restart) handles it
                        log.warning("%s", exc, extra={"agent": self.name})
                        let_go_all(app.consumer, events)
                    except PipelineStopped:
                        return  # an earlier batch failed; the worker is stopping
                    except Exception as exc:
                        await fail(exc)
                        raise
            finally:
                if pipeline is not None:
                    pipeline.cancel()

        consume.__name__ = consume.__qualname__ = self.name.replace(".", "_")
        self._agent = app.agent(source, name=self.name, concurrency=self.concurrency)(consume)


#: How long an agent with uncommitted batches waits for a new record before it commits
#: them: it has caught up, so gathering more changes would only delay the commit (and a
#: rebalance or shutdown, which waits for those batches)
_IDLE_CHECK_S = 0.1


def _first_within(app: faust.App, pipeline: BatchPipeline | None,
                  caught_up: Callable[[], bool]) -> float | None:
    """How long the agent may wait for the first record of its next batch: without limit,
    unless batches await their commit (`COMMIT_INTERVAL_MS`); then until the commit is
    due, at most `_IDLE_CHECK_S` (the open window is committed when no record came), and
    not at all once the flow was stopped (a rebalance or shutdown waits for it) or the
    agent has handled every record its partitions held at their last fetch (`caught_up`:
    waiting could only delay the commit)."""
    due = None if pipeline is None else pipeline.seconds_to_commit()
    if due is None:
        return None
    if not app.flow_control.is_active() or caught_up():
        return 0.0
    return min(due, _IDLE_CHECK_S)


def _ack_all(app: faust.App, events: Sequence[Any], agent: str) -> None:
    """Mark the events done: Faust commits an offset once every event up to it is."""
    ack_all(app.consumer, events)
    if events:
        metrics.CONSUMER_MESSAGES.labels(agent, events[0].message.topic).inc(len(events))


#: Exit status of a worker stopped by a batch that could not be handled (EX_SOFTWARE).
EXIT_HANDLER_FAILED = 70


def _exit_unless_stopped(timeout: float) -> None:
    """End the process if the graceful stop after a crash hangs (seen in Faust's consumer
    shutdown after leaving the group): nothing of the failed batch was acked, so nothing
    past it can be committed either way."""
    timer = threading.Timer(timeout, os._exit, args=(EXIT_HANDLER_FAILED,))
    timer.daemon = True
    timer.start()


def _raw_topic(app: faust.App, name: str, settings: Settings) -> Any:
    """A topic the platform reads and writes as raw bytes (it decodes/encodes itself)."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", partitions=settings.topic_partitions,
                     replicas=settings.topic_replication)


class SinkTopic:
    """Publishes what a handler returned; returns once the broker acknowledged all of it.

    The records go to the producer as one record batch per partition (see
    streams.kafka.record_batches), and the acknowledgements are awaited once per batch,
    not once per record. `producer` gives the producer to send with: in a worker, Faust's,
    and under exactly-once the transactional one of the batch part being processed, so the
    records are part of its transaction. Records without a partition are placed by
    `partitioner` (keyed: the topic's key partitioner; keyless: round-robin).
    """

    def __init__(self, name: str, producer: Callable[[], Awaitable[BatchProducer]],
                 partitioner: Partitioner) -> None:
        self.name = name
        self._producer = producer
        self._partitioner = partitioner

    async def send(self, outputs: Sequence[Any]) -> Awaitable[object]:
        """Hand `outputs` to the producer; the result waits for their acknowledgement."""
        producer = await self._producer()
        partitions = sorted(await producer.partitions_for(self.name))
        place = self._partitioner.placer(self.name, partitions)
        records: list[Record] = []
        for output in outputs:
            if type(output) is tuple and len(output) == 2:  # (key, value): the common case
                key = encode_value(output[0])
                records.append((place(key), key,
                                encode_value(output[1]), []))
                continue
            record = output if isinstance(output, Outgoing) else _as_outgoing(output)
            key = encode_value(record.key)
            partition = record.partition
            if partition is None:
                partition = place(key)
            records.append((partition, key, encode_value(record.value),
                            encode_headers(record.headers)))
        sent = await send_batches(producer, self.name, records)
        return asyncio.gather(*(batch.future for batch in sent))


def _worker_sink(app: faust.App, name: str, settings: Settings) -> SinkTopic:
    """The sink `name` of a worker: declared as a topic of the app, sent through Faust's
    producer (the batch part's transactional one under exactly-once)."""
    _raw_topic(app, name, settings)  # declared, so the worker creates it

    async def producer() -> BatchProducer:
        return await aiokafka_producer(app, current_transactional_id())  # type: ignore[no-any-return]

    return SinkTopic(name, producer, Partitioner(settings.key_partitioner_for))


def _as_outgoing(output: Any) -> Outgoing:
    if isinstance(output, tuple) and len(output) == 2:
        return Outgoing(key=output[0], value=output[1])
    return Outgoing(value=output)


def batch_agent(
    topic: str,
    *,
    value_type: type[Any] | None = None,
    key_type: type[Any] | None = str,
    batch_size: int | None = None,
    flush_interval: float | None = None,
    max_retries: int | None = None,
    backoff: Backoff | None = None,
    dead_letter: bool = True,
    sink: str | None = None,
    concurrency: int = 1,
    name: str | None = None,
    transient: tuple[type[BaseException], ...] = (),
    register: bool = True,
) -> Callable[[Handler], BatchAgent]:
    """Declare a batch handler of `topic`.

    - `batch_size`, `flush_interval` (seconds), `max_retries` and `backoff` default to the
      settings BATCH_SIZE, FLUSH_INTERVAL_MS, FLUSH_MAX_RETRIES and RETRY_BACKOFF_MS (the
      seed's readBatchSize 100, flushInterval 1000 ms, flushMaxRetries 3).
    - `dead_letter=True`: records that still fail go to `<topic>.dlq`; `False`: the worker
      stops at the first such record, committing nothing from it on.
    - `sink`: a topic for what the handler returns (`Outgoing`, `(key, value)` pairs or
      values); published before the batch is acknowledged.
    - `transient`: exception types that mean "not the records' fault" (a database or
      service down), like `RetryableError`: the batch is retried with backoff while its
      partitions wait, up to TRANSIENT_RETRY_DEADLINE_S, and never dead-lettered for them.
    - `concurrency` > 1 runs several handler instances; records of one key may then be
      handled out of order.
    - `register=False` skips the module-level registry: pass the agent to
      `create_app(agents=[...])` yourself.

    Example::

        @batch_agent("orders", value_type=Order, batch_size=500, sink="order-ids")
        async def handle(batch: list[Message[Order]]) -> list[tuple[str, str]]:
            return [(m.key, m.value.order_id) for m in batch]
    """

    def decorate(handler: Handler) -> BatchAgent:
        agent = BatchAgent(
            topic=topic, handler=handler, value_type=value_type, key_type=key_type,
            batch_size=batch_size, flush_interval=flush_interval, max_retries=max_retries,
            backoff=backoff, dead_letter=dead_letter, sink=sink, concurrency=concurrency,
            name=name or "", transient=tuple(transient),
        )
        if register:
            DECLARED_AGENTS.append(agent)
        return agent

    return decorate
