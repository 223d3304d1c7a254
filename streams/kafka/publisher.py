"""Publishing records to Kafka: acks=all, idempotent, bounded retries, bulk and fire-and-forget.

`Publisher` is used by agents, the producer HTTP service and the produce CLI alike::

    async with Publisher(Settings.from_env()) as publisher:
        delivery = await publisher.publish("orders", {"id": 7}, key="customer-1")
        print(delivery.partition, delivery.offset)

How retries work, and why they never duplicate a record:

- The producer is idempotent (acks=all, a producer id and per-partition sequence numbers).
  While a record is in flight, aiokafka re-sends it with the same sequence number as often
  as needed, and the broker drops copies it has already written.
- An *attempt* here is one send plus one wait of at most `PUBLISH_ATTEMPT_TIMEOUT_S` for its
  acknowledgement. A record that is still in flight when the wait ends is not sent again; the
  next attempt waits for the same record. Only a record the producer has given back with a
  retriable error (so no broker wrote it) is sent again.
- Attempts are separated by exponential backoff with jitter and bounded by both
  `PUBLISH_MAX_ATTEMPTS` and `PUBLISH_DEADLINE_S`. When they run out the caller gets a
  `PublishError` naming the topic, the cause and the attempts. Non-retriable errors (record
  too large, unknown topic, not authorized, unserializable value) fail at once.
- A `PublishError` after a timeout means "not confirmed": as with Kafka's own
  `delivery.timeout.ms`, a record still in flight may be written later, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import decimal
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from prometheus_client import REGISTRY, CollectorRegistry

from streams._faust.clients import close_sender
from streams.backoff import Backoff
from streams.errors import BrokerUnreachableError, PublishError, SettingsError, UnknownTopicError
from streams.kafka.client_options import client_options
from streams.kafka.partitioner import Partitioner
from streams.kafka.record_batches import filled_batches
from streams.observability.metrics import (
    PRODUCER_BYTES,
    PRODUCER_ERRORS,
    PRODUCER_MESSAGES,
    PRODUCER_RECORDS_PER_REQUEST,
    PRODUCER_RETRIES,
    PRODUCER_SEND_LATENCY,
    register_metrics,
)
from streams.settings import Settings, _env, _flag, _float, _int, read_env_fields

__all__ = [
    "Delivery",
    "Headers",
    "Outgoing",
    "Publisher",
    "PublisherConfig",
    "encode_headers",
    "encode_value",
    "topic_name_problem",
]

log = logging.getLogger(__name__)

#: The `topic` label of errors about topics that do not exist or cannot: anyone may send
#: any name, and one label value per name would grow the metric without bound.
UNKNOWN_TOPIC_LABEL = "(unknown)"

T = TypeVar("T")
Headers = Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]]

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._\-]+")
#: How long a topic missing from the metadata is looked for again before it is unknown.
TOPIC_METADATA_WAIT_S = 2.0


@dataclass(frozen=True)
class PublisherConfig:
    """Publishing settings, read from the environment like `Settings`."""

    max_attempts: int = _env(
        "PUBLISH_MAX_ATTEMPTS", _int(1, 1000), 5, "attempts per record before PublishError")
    deadline_s: float = _env(
        "PUBLISH_DEADLINE_S", _float(0.1, 3600), 30.0,
        "longest time one record may take, retries included")
    attempt_timeout_s: float = _env(
        "PUBLISH_ATTEMPT_TIMEOUT_S", _float(0.1, 600), 10.0,
        "longest wait for one attempt's acknowledgement (also the request timeout)")
    backoff_ms: int = _env(
        "PUBLISH_BACKOFF_MS", _int(1, 60_000), 100, "first retry delay; doubles per attempt")
    backoff_max_ms: int = _env(
        "PUBLISH_BACKOFF_MAX_MS", _int(1, 600_000), 5000, "longest retry delay")
    queue_size: int = _env(
        "PUBLISH_QUEUE_SIZE", _int(1, 10_000_000), 10_000,
        "fire-and-forget records accepted but not yet acknowledged; publish_soon waits beyond")
    linger_ms: int = _env(
        "PUBLISH_LINGER_MS", _int(0, 60_000), 5, "how long the producer waits to fill a batch")
    max_batch_bytes: int = _env(
        "PUBLISH_MAX_BATCH_BYTES", _int(1024, 64 * 1024 * 1024), 512 * 1024,
        "largest record batch per partition")
    max_request_bytes: int = _env(
        "PUBLISH_MAX_REQUEST_BYTES", _int(1024, 1024 * 1024 * 1024), 1024 * 1024,
        "largest produce request, so also the largest record")
    max_body_bytes: int = _env(
        "PRODUCER_MAX_BODY_BYTES", _int(1024, 1024 * 1024 * 1024), 10 * 1024 * 1024,
        "largest HTTP request body the producer service accepts (413 beyond)")
    max_records_per_request: int = _env(
        "PRODUCER_MAX_RECORDS", _int(1, 1_000_000), 10_000,
        "most records one producer service request may carry (422 beyond)")
    auto_create_topics: bool = _env(
        "TOPIC_AUTO_CREATE", _flag, False,
        "create unknown topics on first publish (TOPIC_PARTITIONS, TOPIC_REPLICATION)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PublisherConfig:
        """Read and validate every variable; raise `SettingsError` on the first bad one."""
        config = cls(**read_env_fields(cls, os.environ if environ is None else environ))
        if config.backoff_max_ms < config.backoff_ms:
            raise SettingsError(
                f"PUBLISH_BACKOFF_MAX_MS={config.backoff_max_ms} is below "
                f"PUBLISH_BACKOFF_MS={config.backoff_ms}: the longest delay must be >= the first"
            )
        return config

    @property
    def backoff(self) -> Backoff:
        """Delays between attempts: doubling from PUBLISH_BACKOFF_MS up to
        PUBLISH_BACKOFF_MAX_MS, with equal jitter."""
        return Backoff(initial=self.backoff_ms / 1000, factor=2.0,
                       maximum=max(self.backoff_max_ms, self.backoff_ms) / 1000, jitter=0.5)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where Kafka wrote a record."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record for `publish_many`. `partition=None` lets the partitioner choose."""

    value: Any
    key: Any = None
    headers: Headers | None = None
    partition: int | None = None


@dataclass(slots=True)
class _Encoded:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None
    future: asyncio.Future[Any] | None = field(default=None)

    @property
    def size(self) -> int:
        return len(self.key or b"") + len(self.value or b"")


@dataclass(slots=True)
class _SentChunk:
    """Consecutive records of one partition, sent as one record batch: the batch's future,
    or the error that kept it from being sent."""

    partition: int
    records: list[tuple[int, _Encoded]]
    future: asyncio.Future[Any] | Exception


async def _sent_or_error(sending: Awaitable[asyncio.Future[Any]]
                         ) -> asyncio.Future[Any] | Exception:
    try:
        return await sending
    except Exception as exc:
        return exc


def _nth_record(batch: asyncio.Future[Any], n: int) -> asyncio.Future[Any]:
    """A future of the `n`th record of a record batch: the batch's metadata at its offset."""
    record: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def settle(done: asyncio.Future[Any]) -> None:
        if record.done():
            return
        if done.cancelled():
            record.cancel()
        elif (error := done.exception()) is not None:
            record.set_exception(error)
        else:
            metadata = done.result()
            record.set_result(metadata._replace(offset=metadata.offset + n))

    batch.add_done_callback(settle)
    return record


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    to_representation = getattr(value, "to_representation", None)
    if callable(to_representation):
        data = to_representation()
        if isinstance(data, dict):
            # Faust's {"__faust": {"ns": "module.Class"}} names a Python class: consumers in
            # other languages get the record's fields only.
            data.pop("__faust", None)
        return data
    raise TypeError(f"a {type(value).__name__} is not JSON serializable")


_dumps = json.JSONEncoder(separators=(",", ":"), default=_json_default).encode
_struct_json = msgspec.json.Encoder(enc_hook=_json_default)


def encode_value(value: Any) -> bytes | None:
    """Bytes and str pass through (str as UTF-8); models, dataclasses and JSON data as JSON.

    Faust records, dataclasses and msgspec Structs become plain JSON objects of their
    fields (no `__faust` metadata), nested ones too; datetimes become ISO 8601 strings.
    Other objects with `dumps()` returning bytes or str use that. Raises `TypeError` for
    anything else.

    A msgspec Struct is encoded by msgspec, in C (the fast path, a tenth of the cost):
    the same compact JSON object, except that text is UTF-8 rather than \\u-escaped and
    an aware UTC datetime ends in "Z" rather than "+00:00" (RFC 3339 either way).
    """
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, msgspec.Struct):
        return _struct_json.encode(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if not hasattr(value, "to_representation"):
        dumps = getattr(value, "dumps", None)
        if callable(dumps) and not isinstance(value, type):
            data = dumps()
            if isinstance(data, bytes):
                return data
            return data.encode() if isinstance(data, str) else _dumps(data).encode()
    return _dumps(value).encode()


def encode_headers(headers: Headers | None) -> list[tuple[str, bytes]]:
    """Headers as Kafka wants them: (str, bytes) pairs; str values become UTF-8."""
    if not headers:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    encoded = []
    for name, value in pairs:
        if not isinstance(name, str):
            raise TypeError(f"header names must be str, got {type(name).__name__}")
        if isinstance(value, str):
            value = value.encode()
        elif not isinstance(value, bytes):
            raise TypeError(f"header {name!r} must be str or bytes, got {type(value).__name__}")
        encoded.append((name, value))
    return encoded


def topic_name_problem(topic: str) -> str | None:
    """What is wrong with a topic name by Kafka's rules, or None when it is legal."""
    if not topic:
        return "the topic name is empty"
    if topic in (".", ".."):
        return f"{topic!r} is not a legal topic name"
    if len(topic) > 249:
        return f"the topic name is {len(topic)} characters long; Kafka allows at most 249"
    if not _TOPIC_NAME.fullmatch(topic):
        return (f"{topic!r} has characters Kafka does not allow "
                "(only letters, digits, '.', '_', '-')")
    return None


def _retriable(exc: BaseException) -> bool:
    # KafkaTimeoutError is raised when a send could not even be queued (no metadata, buffer
    # full): nothing was written, so trying again is safe although aiokafka marks it final.
    if isinstance(exc, KafkaTimeoutError | TimeoutError | OSError):
        return True
    return bool(getattr(exc, "retriable", False))


class _NotAcknowledged(TimeoutError):
    pass


class Publisher:
    """Publishes to Kafka with acks=all and idempotence; see the module docstring.

    `producer_factory` builds the underlying `AIOKafkaProducer` (tests pass a stand-in).
    """

    def __init__(
        self,
        settings: Settings,
        config: PublisherConfig | None = None,
        *,
        client_id: str = "streams-publisher",
        producer_factory: Callable[..., AIOKafkaProducer] = AIOKafkaProducer,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.settings = settings
        #: where the producer metrics are exposed (prometheus_client's default registry)
        self.registry = register_metrics(registry)
        self.config = config or PublisherConfig.from_env()
        self._client_id = client_id
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = Partitioner(settings.key_partitioner_for)
        self._partitions: dict[str, list[int]] = {}
        self._slots = asyncio.Semaphore(self.config.queue_size)
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._failures: list[PublishError] = []
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------

    def producer_options(self) -> dict[str, Any]:
        """The options the aiokafka producer is built with (the bench reuses them)."""
        cfg, settings = self.config, self.settings
        return client_options(
            settings,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(cfg.attempt_timeout_s * 1000),
            retry_backoff_ms=cfg.backoff_ms,
            linger_ms=cfg.linger_ms,
            max_batch_size=cfg.max_batch_bytes,
            max_request_size=cfg.max_request_bytes,
        )

    def admin_options(self) -> dict[str, Any]:
        """Options for an admin client beside the producer (same cluster and timeout)."""
        return client_options(self.settings,
                              request_timeout_ms=int(self.config.attempt_timeout_s * 1000))

    async def start(self) -> None:
        """Connect; raise `BrokerUnreachableError` within `BROKER_CONNECT_TIMEOUT_S` if no
        broker answers."""
        producer = self._producer_factory(partitioner=self._partitioner, **self.producer_options())
        timeout = self.settings.broker_connect_timeout_s
        try:
            await asyncio.wait_for(producer.start(), timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._stop_producer(producer, timeout=2.0)
            reason = (f"no answer within {timeout:g}s" if isinstance(exc, TimeoutError)
                      else f"{type(exc).__name__}: {exc}")
            raise BrokerUnreachableError(
                f"no Kafka broker answered at {self.settings.bootstrap_servers} ({reason}); "
                "check KAFKA_BOOTSTRAP_SERVERS and that the cluster is up"
            ) from None
        self._producer = producer

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def producer(self) -> AIOKafkaProducer:
        """The underlying aiokafka producer (read-only use: inspecting its configuration)."""
        if self._producer is None:
            raise RuntimeError("Publisher is not started: call `await publisher.start()` first")
        return self._producer

    async def flush(self, timeout: float | None = None) -> list[PublishError]:
        """Wait until every `publish_soon` record is acknowledged or given up on.

        Returns the records given up on since the last flush (each also logged and counted
        in `streams_producer_errors_total`). With `timeout`, returns when it passes even if
        records are still outstanding.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        failures, self._failures = self._failures, []
        return failures

    async def close(self, timeout: float | None = None) -> list[PublishError]:
        """Deliver what is queued, then disconnect; return the records that could not be.

        Bounded: after `timeout` (default: the publish deadline plus one attempt) records
        still outstanding are reported as failed and the connection is dropped.
        """
        if self._closing:
            return []
        self._closing = True
        limit = timeout if timeout is not None else (
            self.config.deadline_s + self.config.attempt_timeout_s)
        ends = time.monotonic() + limit
        failures = await self.flush(limit)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        failures += await self.flush(0)
        if self._producer is not None:
            await self._stop_producer(self._producer, max(ends - time.monotonic(), 1.0))
        return failures

    @staticmethod
    async def _stop_producer(producer: AIOKafkaProducer, timeout: float) -> None:
        try:
            await asyncio.wait_for(producer.stop(), timeout)
        except (TimeoutError, KafkaError, OSError):
            # An idempotent producer retries in-flight batches for as long as no broker
            # answers, so its stop() can wait forever; end its sender task and connections.
            await close_sender(producer, 5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.client.close(), 5)

    # -- publishing ------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        headers: Headers | None = None,
        *,
        partition: int | None = None,
    ) -> Delivery:
        """Publish one record; return where it was written once all in-sync replicas have it.

        Raises `PublishError` (or `UnknownTopicError`) when it cannot be written.
        """
        started = time.monotonic()
        record = self._encode(topic, value, key, headers, partition)
        meta = await self._deliver(topic, record, started)
        PRODUCER_MESSAGES.labels(topic).inc()
        PRODUCER_BYTES.labels(topic).inc(record.size)
        PRODUCER_SEND_LATENCY.labels(topic).observe(time.monotonic() - started)
        return Delivery(topic, meta.partition, meta.offset)

    async def publish_many(
        self, topic: str, records: Iterable[Outgoing]
    ) -> list[Delivery | PublishError]:
        """Publish many records at once; return one result per record, in order.

        The records of each partition are handed to the producer as record batches, in
        order, with one future per batch rather than one per record (aiokafka's
        `send_batch`; a per-record send cost more than the JSON encoding). A record of half
        `PUBLISH_MAX_BATCH_BYTES` or `PUBLISH_MAX_REQUEST_BYTES` or more is sent on its own,
        so the producer's size limit refuses it as `publish` would. A batch that fails is
        sent again record by record, with the retries of `publish`. A record that fails is
        returned as its `PublishError`; the others are still written. Retried records may
        land after records given later. A topic-level failure (unknown topic, no broker)
        raises instead, and then nothing was written.
        """
        started = time.monotonic()
        self.producer  # noqa: B018 - raises when not started
        partitions = await self.partitions_for(topic)
        results: list[Delivery | PublishError | None] = []
        by_partition: dict[int, list[tuple[int, _Encoded]]] = {}
        choose = self._partitioner.partition
        for index, item in enumerate(records):
            try:
                record = self._encode(topic, item.value, item.key, item.headers, item.partition)
            except PublishError as exc:
                results.append(exc)
                continue
            results.append(None)
            target = record.partition
            if target is None:
                target = choose(topic, record.key, partitions)
            by_partition.setdefault(target, []).append((index, record))
        PRODUCER_RECORDS_PER_REQUEST.observe(len(results))
        sent: list[_SentChunk] = []
        for partition, items in by_partition.items():
            sent += await self._send_in_batches(topic, partition, items)
        await self._wait_for_acks(started)

        retry: list[tuple[int, _Encoded]] = []
        ok_bytes = 0
        for chunk in sent:
            future = chunk.future
            if isinstance(future, Exception):
                if not _retriable(future):
                    for index, _ in chunk.records:
                        results[index] = self._failed(topic, future, 1, retriable=False)
                    continue
            elif future.done() and future.exception() is None:
                base = future.result().offset
                for n, (index, record) in enumerate(chunk.records):
                    results[index] = Delivery(topic, chunk.partition, base + n)
                    ok_bytes += record.size
                continue
            elif not future.done():  # past the deadline: wait on, never send again
                for n, (_, record) in enumerate(chunk.records):
                    record.future = _nth_record(future, n)
            retry += chunk.records
        if retry:
            outcomes = await asyncio.gather(
                *(self._deliver(topic, record, started, attempts=1) for _, record in retry),
                return_exceptions=True)
            for (index, record), outcome in zip(retry, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, PublishError):
                        raise outcome
                    results[index] = outcome
                else:
                    results[index] = Delivery(topic, outcome.partition, outcome.offset)
                    ok_bytes += record.size
        delivered = sum(isinstance(r, Delivery) for r in results)
        PRODUCER_MESSAGES.labels(topic).inc(delivered)
        PRODUCER_BYTES.labels(topic).inc(ok_bytes)
        PRODUCER_SEND_LATENCY.labels(topic).observe(time.monotonic() - started)
        return results  # type: ignore[return-value]

    async def publish_soon(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        headers: Headers | None = None,
        *,
        partition: int | None = None,
    ) -> None:
        """Queue one record and return; waits only while `PUBLISH_QUEUE_SIZE` records are
        outstanding (back-pressure).

        Serialization errors raise here. Delivery failures are logged, counted and returned
        by `flush()` / `close()`.
        """
        if self._closing:
            raise RuntimeError("Publisher is closed: publish_soon() after close()")
        self.producer  # noqa: B018 - raises when not started
        record = self._encode(topic, value, key, headers, partition)
        await self._slots.acquire()
        self._idle.clear()
        task = asyncio.create_task(self._deliver_in_background(topic, record, time.monotonic()))
        self._tasks.add(task)
        task.add_done_callback(self._background_done)

    async def _deliver_in_background(self, topic: str, record: _Encoded, started: float) -> None:
        try:
            await self._deliver(topic, record, started)
        except PublishError as exc:
            log.error("%s", exc)
            self._failures.append(exc)
            return
        except asyncio.CancelledError:
            error = self._failed(
                topic, "the publisher closed before Kafka acknowledged the record",
                1, retriable=True)
            self._failures.append(error)
            raise
        PRODUCER_MESSAGES.labels(topic).inc()
        PRODUCER_BYTES.labels(topic).inc(record.size)
        PRODUCER_SEND_LATENCY.labels(topic).observe(time.monotonic() - started)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not self._tasks:
            self._idle.set()

    async def partitions_for(self, topic: str) -> list[int]:
        """The topic's partition ids, retried like a publish; `UnknownTopicError` at once
        when it does not exist (or is created when TOPIC_AUTO_CREATE is on)."""
        return await self._retry(topic, time.monotonic(), lambda _: self._topic_partitions(topic))

    # -- internals -------------------------------------------------------------------

    def _encode(
        self, topic: str, value: Any, key: Any, headers: Headers | None, partition: int | None
    ) -> _Encoded:
        try:
            record = _Encoded(encode_value(key), encode_value(value), encode_headers(headers),
                              partition)
        except (TypeError, ValueError) as exc:
            raise self._failed(topic, exc, 0, retriable=False) from None
        if record.key is None and record.value is None:
            raise self._failed(
                topic, ValueError("a record needs a key or a value (a tombstone needs its key)"),
                0, retriable=False)
        return record

    async def _topic_partitions(self, topic: str) -> list[int]:
        """The topic's partition ids; `UnknownTopicError` at once if it does not exist."""
        known = self._partitions.get(topic)
        if known is not None:
            return known
        problem = topic_name_problem(topic)
        if problem is not None:
            raise self._failed(topic, ValueError(problem), 1, retriable=False,
                               label=UNKNOWN_TOPIC_LABEL)
        producer = self.producer
        # A full metadata request tells "no such topic" apart from "no broker"; waiting on
        # the producer's own metadata would spin until its request timeout instead.
        metadata = await self._metadata_with(topic)
        if topic in metadata.unauthorized_topics:
            raise self._failed(topic, PermissionError(
                f"not authorized to write to topic {topic!r}"), 1, retriable=False)
        if metadata.partitions_for_topic(topic) is None:
            if not self.config.auto_create_topics:
                error = UnknownTopicError(
                    topic, f"topic {topic!r} does not exist (auto-create is off: create it, "
                    "or set TOPIC_AUTO_CREATE=true)", 1, retriable=False)
                PRODUCER_ERRORS.labels(UNKNOWN_TOPIC_LABEL, "UnknownTopicError").inc()
                raise error
            await self._create_topic(topic)
        partitions = sorted(await producer.partitions_for(topic))
        self._partitions[topic] = partitions
        return partitions

    async def _metadata_with(self, topic: str) -> Any:
        """Cluster metadata, asked again for a moment while it does not know `topic` yet.

        A topic created a moment ago may not have reached every broker's metadata cache;
        like the Java producer (which waits up to max.block.ms) we ask again for up to
        TOPIC_METADATA_WAIT_S before calling the topic unknown.
        """
        client = self.producer.client
        deadline = asyncio.get_running_loop().time() + TOPIC_METADATA_WAIT_S
        while True:
            metadata = await client.fetch_all_metadata()
            known = (metadata.partitions_for_topic(topic) is not None
                     or topic in metadata.unauthorized_topics)
            if known or asyncio.get_running_loop().time() >= deadline:
                return metadata
            await asyncio.sleep(0.1)

    async def _create_topic(self, topic: str) -> None:
        admin = AIOKafkaAdminClient(**self.admin_options())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(
                topic, self.settings.topic_partitions, self.settings.topic_replication)])
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()
        log.info("created topic %s (%d partitions, replication %d)", topic,
                 self.settings.topic_partitions, self.settings.topic_replication)

    async def _send_in_batches(self, topic: str, partition: int,
                               items: list[tuple[int, _Encoded]]) -> list[_SentChunk]:
        """Hand `items` (records of `partition`, in order) to the producer as record
        batches. A record of half the batch or request size limit or more goes alone
        through `send`, whose size check (the request limit) applies to it; the smaller
        ones cannot exceed it."""
        producer = self.producer
        limit = min(self.config.max_batch_bytes, self.config.max_request_bytes) // 2
        chunks: list[_SentChunk] = []
        first = 0  # of the records not sent yet

        async def send_small(end: int) -> None:
            nonlocal first
            batched = ((record.key, record.value, record.headers)
                       for _, record in items[first:end])
            for batch, count in filled_batches(producer, batched):
                chunks.append(_SentChunk(partition, items[first:first + count],
                                         await _sent_or_error(producer.send_batch(
                                             batch, topic, partition=partition))))
                first += count

        for n, (_, record) in enumerate(items):
            if record.size >= limit:
                await send_small(n)
                chunks.append(_SentChunk(partition, items[n:n + 1], await _sent_or_error(
                    producer.send(topic, record.value, key=record.key, partition=partition,
                                  headers=record.headers))))
                first = n + 1
        await send_small(len(items))
        return chunks

    async def _wait_for_acks(self, started: float) -> None:
        remaining = started + self.config.deadline_s - time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.producer.flush(), max(remaining, 0.001))

    async def _deliver(
        self, topic: str, record: _Encoded, started: float, attempts: int = 0
    ) -> Any:
        """Send `record` (or keep waiting for it) until acknowledged, within the limits."""

        async def attempt(remaining: float) -> Any:
            if record.future is None or (
                record.future.done() and record.future.exception() is not None
            ):
                record.future = None
                partitions = await self._topic_partitions(topic)
                target = record.partition
                if target is None:
                    target = self._partitioner.partition(topic, record.key, partitions)
                record.future = await asyncio.wait_for(self.producer.send(
                    topic, record.value, key=record.key, partition=target,
                    headers=record.headers), remaining)
            wait = min(self.config.attempt_timeout_s, remaining)
            sent = record.future
            assert sent is not None  # set just above
            try:
                return await asyncio.wait_for(asyncio.shield(sent), wait)
            except TimeoutError:
                raise _NotAcknowledged(
                    f"no acknowledgement within {wait:.1f}s (the record stays in flight)"
                ) from None

        return await self._retry(topic, started, attempt, attempts)

    async def _retry(
        self,
        topic: str,
        started: float,
        attempt: Callable[[float], Awaitable[T]],
        attempts: int = 0,
    ) -> T:
        cfg = self.config
        deadline = started + cfg.deadline_s
        while True:
            attempts += 1
            try:
                return await attempt(max(deadline - time.monotonic(), 0.001))
            except PublishError:
                raise
            except Exception as exc:
                if not _retriable(exc):
                    raise self._failed(topic, exc, attempts, retriable=False) from None
                cause: Exception = exc
            delay = cfg.backoff.delay(attempts - 1)
            if attempts >= cfg.max_attempts or time.monotonic() + delay >= deadline:
                raise self._failed(topic, cause, attempts, retriable=True) from None
            PRODUCER_RETRIES.labels(topic).inc()
            log.warning("publish to %s: attempt %d failed (%s: %s); retrying in %.2fs",
                        topic, attempts, type(cause).__name__, cause, delay)
            await asyncio.sleep(delay)

    @staticmethod
    def _failed(
        topic: str, cause: BaseException | str, attempts: int, *, retriable: bool,
        label: str | None = None,
    ) -> PublishError:
        error = PublishError(topic, cause, attempts, retriable=retriable)
        PRODUCER_ERRORS.labels(label or topic, error.error_type).inc()
        return error
