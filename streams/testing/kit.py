"""Run a batch agent on records in memory, no broker: what a team's unit test needs.

The records go through the worker's own steps (decoding into the agent's types, the
handler with its retries, isolating bad records into dead letters, table writes, sink
encoding), with these differences:

- each key is put on the partition the topic's producers would give it (`key_partitioner`,
  as the KEY_PARTITIONER setting; offsets count per partition), so table writes keyed
  like the record are accepted;
- tables live in memory; they are bound to a fresh in-memory app for every run, so a run
  starts from empty tables and they can be read after it (`table.get(key)`,
  `windowed.range(key, start, end)`);
- retries do not wait: their delays are recorded in `AgentRun.retries`, and time runs on
  with them, so a handler failing transiently (`RetryableError`, the agent's `transient`
  types) for ever ends with `TransientDeadlineError` after TRANSIENT_RETRY_DEADLINE_S of
  recorded delays (0: the run never ends);
- records the worker would publish (sink records, dead letters, changelog) are kept in
  the result instead.

Example::

    from streams.testing import run_agent
    from team_x.agent import count_cards

    def test_counts_per_card():
        result = run_agent(count_cards, [("card-1", {"cents": 5}), ("card-1", {"nope": 1})])
        assert result.table("card_counts") == {"card-1": 1}
        assert result.sink_values == [{"card": "card-1", "count": 1}]
        assert "KeyError" in result.dead_letters[0].reason
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import faust

from streams.backoff import Backoff
from streams.kafka.partitioner import KEY_PARTITIONERS, Partitioner, key_partition
from streams.kafka.publisher import encode_headers, encode_value
from streams.processing.agents import BatchAgent, SinkTopic
from streams.processing.dead_letters import dead_letter_headers, dead_letter_topic_name
from streams.processing.processor import BatchProcessor
from streams.settings import Settings
from streams.state import writes as table_writes
from streams.state.tables import DECLARED_TABLES, PerKeyTable
from streams.state.windows import DECLARED_WINDOWED_TABLES, WindowedTable

__all__ = ["AgentRun", "DeadLetter", "Record", "Retry", "SinkRecord", "run_agent",
           "run_agent_async"]

Table = PerKeyTable[Any] | WindowedTable[Any]


@dataclass(frozen=True)
class Record:
    """A record as a producer would publish it. `key`: str or bytes (None: no key);
    `value`: bytes or str as they are, anything else as JSON; `timestamp` defaults to the
    time of the run; `headers` values are str or bytes."""

    key: str | bytes | None
    value: Any
    timestamp: datetime | None = None
    headers: Mapping[str, str | bytes] | None = None


@dataclass(frozen=True)
class SinkRecord:
    """A record the handler returned, as the worker would write it to the sink topic."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int | None

    @property
    def json(self) -> Any:
        """The value parsed as JSON."""
        return None if self.value is None else json.loads(self.value)


@dataclass(frozen=True)
class DeadLetter:
    """A record the worker would write to `<topic>.dlq`, and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: BaseException
    attempts: int
    headers: dict[str, bytes]

    @property
    def reason(self) -> str:
        """`ErrorType: message`, as in the dead letter's x-error-* headers."""
        return f"{type(self.error).__name__}: {self.error}"


@dataclass(frozen=True)
class Retry:
    """A handler call that failed and was tried again after `delay` seconds (not waited)."""

    delay: float


@dataclass
class AgentRun:
    """What a run of an agent produced."""

    sink: list[SinkRecord] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    changelog: list[tuple[str, int, bytes, bytes | None]] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def sink_values(self) -> list[Any]:
        """The sink records' values, parsed as JSON."""
        return [record.json for record in self.sink]

    def table(self, name: str) -> dict[Any, Any]:
        """The contents of table `name` after the run: `{key: value}`, or for a windowed
        table `{(key, window_start): value}` with the window start as a UTC datetime."""
        try:
            table = self.tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r} in this run; tables: {sorted(self.tables)}"
                           ) from None
        items = table.faust_table.data.data.items()  # the in-memory store's dict
        if isinstance(table, WindowedTable):
            return {(key, datetime.fromtimestamp(start, UTC)): value
                    for (key, (start, _)), value in sorted(items)}
        return dict(items)


def run_agent(agent: BatchAgent, records: Iterable[Record | tuple[Any, Any]], *,
              tables: Sequence[Table] | None = None, partitions: int | None = None,
              batch_size: int | None = None, key_partitioner: str | None = None) -> AgentRun:
    """Run `agent` on `records` (each a `Record` or a `(key, value)` pair); see the module.

    `tables` defaults to every declared table; `partitions`, `batch_size` and
    `key_partitioner` to the settings' defaults (TOPIC_PARTITIONS, BATCH_SIZE unless the
    agent sets its own, KEY_PARTITIONER). For async tests use `run_agent_async`.
    """
    return asyncio.run(run_agent_async(agent, records, tables=tables, partitions=partitions,
                                       batch_size=batch_size,
                                       key_partitioner=key_partitioner))


async def run_agent_async(agent: BatchAgent, records: Iterable[Record | tuple[Any, Any]], *,
                          tables: Sequence[Table] | None = None, partitions: int | None = None,
                          batch_size: int | None = None, key_partitioner: str | None = None,
                          ) -> AgentRun:
    """`run_agent` for a test that already runs an event loop."""
    defaults = Settings()
    partitioner = key_partitioner or defaults.key_partitioner
    if partitioner not in KEY_PARTITIONERS:
        raise ValueError(f"key_partitioner {partitioner!r}: use one of "
                         f"{', '.join(KEY_PARTITIONERS)}")
    partitions = partitions or defaults.topic_partitions
    size = batch_size or agent.batch_size or defaults.batch_size
    run = AgentRun()
    sleep = _Sleep(run)
    app = _bind_tables(run, tables, partitions, partitioner)
    processor = BatchProcessor(
        agent=agent.name,
        handler=agent.handler,
        value_type=agent.value_type,
        key_type=agent.key_type,
        max_retries=defaults.flush_max_retries if agent.max_retries is None
        else agent.max_retries,
        backoff=agent.backoff or Backoff(initial=defaults.retry_backoff_ms / 1000),
        dead_letters=_DeadLetters(run) if agent.dead_letter else None,
        sink=_sink(run, agent.sink, partitions, partitioner) if agent.sink else None,
        sleep=sleep,
        transient=agent.transient,
        transient_deadline_s=defaults.transient_retry_deadline_s or None,
        clock=sleep.clock,
    )
    events = _events(agent.topic, records, partitions, partitioner)
    for start in range(0, len(events), size):
        writes = table_writes.PendingWrites()
        with table_writes.collecting(writes):
            await processor.process(events[start:start + size])
        await writes.commit(app, app.changelog)
    return run


# --- what stands in for Kafka ------------------------------------------------------------

@dataclass
class _KafkaRecord:
    """The fields of a consumed record the worker reads (as aiokafka/Faust give them)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float
    headers: list[tuple[str, bytes]]


class _Event:
    """What Faust hands an agent: the record, and an ack the kit does not need."""

    def __init__(self, message: _KafkaRecord) -> None:
        self.message = message

    def ack(self) -> None:
        pass


def _events(topic: str, records: Iterable[Record | tuple[Any, Any]], partitions: int,
            partitioner: str) -> list[_Event]:
    now = datetime.now(UTC)
    offsets = [0] * partitions
    events = []
    for item in records:
        record = item if isinstance(item, Record) else Record(*item)
        key = record.key.encode() if isinstance(record.key, str) else record.key
        # Kafka's default partitioner spreads unkeyed records; partition 0 stands for that.
        partition = 0 if key is None else key_partition(key, partitions, partitioner)
        events.append(_Event(_KafkaRecord(
            topic=topic, partition=partition, offset=offsets[partition], key=key,
            value=encode_value(record.value),
            timestamp=(record.timestamp or now).timestamp(),
            headers=encode_headers(record.headers))))
        offsets[partition] += 1
    return events


class _Delivered:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset


def _done(value: Any) -> asyncio.Future[Any]:
    future = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


class _Batch:
    """A record batch as aiokafka's producer builds it (`create_batch`)."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: float | None,
               headers: list[tuple[str, bytes]]) -> object:
        self.records.append((key, value, headers))
        return self


class _SinkProducer:
    """The producer `SinkTopic` writes the sink records with."""

    def __init__(self, run: AgentRun, partitions: int) -> None:
        self.run = run
        self.partitions = partitions

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int
                         ) -> asyncio.Future[Any]:
        for key, value, headers in batch.records:
            self.run.sink.append(SinkRecord(key, value, dict(headers), partition))
        return _done(None)


def _sink(run: AgentRun, topic: str, partitions: int, partitioner: str) -> SinkTopic:
    producer = _SinkProducer(run, partitions)

    async def get_producer() -> _SinkProducer:
        return producer

    return SinkTopic(topic, get_producer, Partitioner(lambda _: partitioner))


class _DeadLetters:
    def __init__(self, run: AgentRun) -> None:
        self.run = run

    async def send(self, event: Any, error: BaseException, attempts: int) -> None:
        record = event.message
        headers = dead_letter_headers(record.headers, record.topic, record.partition,
                                      record.offset, error, attempts)
        self.run.dead_letters.append(DeadLetter(
            dead_letter_topic_name(record.topic), record.partition, record.offset,
            record.key, record.value, error, attempts, dict(headers)))


class _Sleep:
    """Records each retry's delay instead of waiting; `clock` is the delays so far."""

    def __init__(self, run: AgentRun) -> None:
        self.run = run
        self.slept = 0.0

    async def __call__(self, delay: float) -> None:
        self.run.retries.append(Retry(delay))
        self.slept += delay

    def clock(self) -> float:
        return self.slept


class _Changelog:
    """The producer table writes go through: keeps each record, answers with its offset."""

    def __init__(self, run: AgentRun) -> None:
        self.run = run
        self.offsets: dict[tuple[str, int], int] = {}

    async def partitions_for(self, topic: str) -> set[int]:
        raise NotImplementedError  # table changes carry their partition

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int
                         ) -> asyncio.Future[Any]:
        base = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = base + len(batch.records)
        for key, value, _ in batch.records:
            self.run.changelog.append((topic, partition, cast(bytes, key), value))
        return _done(_Delivered(topic, partition, base))


class _KitApp(faust.App):
    """An app that is never started: it only holds the tables and their producer."""

    changelog: _Changelog

    async def maybe_start_producer(self) -> Any:
        return self.changelog


def _bind_tables(run: AgentRun, tables: Sequence[Table] | None, partitions: int,
                 partitioner: str) -> _KitApp:
    app = _KitApp(f"streams-testing-{uuid.uuid4().hex[:8]}", store="memory://",
                  autodiscover=False, topic_partitions=partitions)
    app.changelog = _Changelog(run)
    chosen: Sequence[Table] = ([*DECLARED_TABLES, *DECLARED_WINDOWED_TABLES]
                               if tables is None else tables)
    for table in chosen:
        declared_store = table.store
        table.store = "memory"
        try:
            table.bind(app, default_store="memory", partitions=partitions,
                       key_partitioner=partitioner)
        finally:
            table.store = declared_store
        run.tables[table.name] = table
    return app
