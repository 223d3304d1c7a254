"""Exactly-once processing (`PROCESSING_GUARANTEE=exactly_once`): one Kafka transaction per
source partition of each batch, holding the batch's sink records, dead letters, table
changelog records and its consumer offsets.

Faust's own `exactly_once` (faust-streaming 0.15) gives each assigned source partition a
transactional producer (`transactional.id` = `<app id>-<topic group>-<partition>`, so a
restarted or new owner fences the old one and aborts its open transaction) and reads with
`isolation_level=read_committed`. That part is kept. What it does not do, and this module
does instead:

- Faust commits every transaction on a timer (`broker_commit_interval`) with the offsets
  acked so far. A batch agent sends while it works and acks only at the end, so a timer
  commit can carry half a batch's output without its offsets: a kill then repeats output
  that was already visible to read_committed consumers. Here the timer commit does nothing
  (`BatchTransactionManager.commit`); each batch part commits its own transaction once its
  output is out, with its offsets.
- Faust puts a record in the transaction of the partition it is *sent to*, found through
  the consumer's topic groups: a sink or dead-letter topic the app does not consume fails
  with KeyError, and a record sent to another partition is committed with that partition's
  offsets. Here every record sent while a batch part runs goes in the source partition's
  transaction.
- Table changelog records are buffered (`send_soon`) and Faust does not wait for them before
  committing, so they can land in a later transaction. Here the part waits for each of its
  changelog records to be acknowledged before it commits.
- RocksDB keeps table writes whose transaction a kill aborted (Faust only delays the
  persisted changelog offset). A worker therefore rebuilds its RocksDB tables from the
  committed changelog when it starts (`prepare_worker`).
- Around rebalances Faust's fetcher can deliver records again or skip some, and its own
  committed offsets follow acknowledgements. Each part starts where the broker says the
  partition's committed work ends, and holes are fetched again (`SourcePositions`).
- Faust's recovery reads changelog highwaters from a cached last stable offset, unknown
  before the first fetch: `streams._faust.consumer.BrokerHighwaterThread` asks the broker.
  It also waits 10 s to see that a changelog ends with a transaction marker:
  `streams.processing.marker_tail.MarkerTailWatch` sees it within a second.

Because a transaction belongs to one source partition, a batch is handed to the handler in
parts, one per partition, each processed and committed in turn. A part that cannot commit
(producer fenced by a new owner, transaction timed out, partition revoked while the batch
ran) raises `TransactionFailedError`: the agent stops the worker without acking, and the new
owner processes the part again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faust.transport.consumer import TransactionManager
from faust.types import TP, FutureMessage

from streams._faust.tables import on_changelog_send
from streams._faust.transactions import (
    consumer_isolation_level,
    in_transaction,
    started_transactional_ids,
    transaction_producer,
    use_transaction_manager,
)
from streams.errors import StreamsError, TransactionFailedError
from streams.observability.metrics import TRANSACTIONS, expose_guarantee
from streams.processing.marker_tail import MarkerTailWatch
from streams.processing.source_positions import SourcePositions

log = logging.getLogger(__name__)

EXACTLY_ONCE = "exactly_once"


@dataclass(eq=False)
class PartTransaction:
    """The open transaction of one batch part (the events of one source partition)."""

    tp: TP
    transactional_id: str
    changelog: list[asyncio.Future[Any]] = field(default_factory=list)
    #: changelog partition -> (store, the offset it is complete up to once this commits)
    changelog_offsets: dict[TP, tuple[Any, int]] = field(default_factory=dict)


_CURRENT: contextvars.ContextVar[PartTransaction | None] = contextvars.ContextVar(
    "streams_part_transaction", default=None)


def persist_when_committed(store: Any, tp: TP, offset: int) -> None:
    """Have `store` record that it holds changelog partition `tp` up to `offset` once the
    running batch part's transaction commits (the records are not in the changelog for
    read_committed readers before). Outside a batch part nothing is recorded: a recovery
    then replays from the last offset recorded, which the changes make no worse.

    Faust's `TableManager.persist_offset_on_commit` keeps such offsets by changelog
    partition but writes them for the source partitions committed, so they were never
    written: every rebalance replayed all the changes a worker had written itself since
    its tables were last restored.
    """
    current = _CURRENT.get()
    if current is None:
        return
    recorded = current.changelog_offsets.get(tp)
    if recorded is None or offset > recorded[1]:
        current.changelog_offsets[tp] = (store, offset)


def current_transactional_id() -> str | None:
    """The transactional id of the batch part running in this task (None outside one)."""
    current = _CURRENT.get()
    return None if current is None else current.transactional_id


class BatchTransactionManager(TransactionManager):
    """Faust's per-partition transactional producers, committed by batch parts, not a timer."""

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None, headers: Any, *,
                   transactional_id: str | None = None) -> Awaitable[Any]:
        current = _CURRENT.get()
        if current is None:
            # Outside a batch part: table changelog records published by Faust's buffer
            # (their partition is the source partition, so is their transaction), or a
            # record the worker sends on its own (console), which belongs to no batch.
            try:
                return await super().send(topic, key, value, partition, timestamp, headers)
            except KeyError:  # a topic the app does not consume: no transaction of its own
                return await self.producer.send(topic, key, value, partition, timestamp,
                                                headers)
        return await self.producer.send(topic, key, value, partition, timestamp, headers,
                                        transactional_id=current.transactional_id)

    async def commit(self, offsets: Any, start_new_transaction: bool = True) -> bool:
        """Faust's periodic commit: the offsets are already in the batch transactions.

        Returning True lets Faust record them as committed (its bookkeeping and lag).
        """
        return True


def install(app: Any) -> None:
    """Make `app` run batches in transactions if PROCESSING_GUARANTEE is exactly_once.

    Called by `create_app` once agents and tables are bound.
    """
    expose_guarantee(app.metrics_registry, lambda: (
        app.conf.processing_guarantee.value, consumer_isolation_level(app),
        started_transactional_ids(app)))
    if app.conf.processing_guarantee.value != EXACTLY_ONCE:
        return
    use_transaction_manager(app, BatchTransactionManager)
    app.sensors.add(MarkerTailWatch(app))
    for table in getattr(app, "platform_tables", ()):
        _track_changelog(table.faust_table)


def prepare_worker(app: Any) -> None:
    """Checks and clean-up before an exactly-once worker starts (no-op otherwise).

    Refuses agents exactly-once cannot keep its promise for (one line, exit status 2), and
    removes the worker's RocksDB tables so they are rebuilt from the committed changelogs:
    a killed worker's RocksDB may hold writes of transactions that were aborted, only the
    changelog read with read_committed is the truth.
    """
    if not app.in_transaction:
        return
    for agent in getattr(app, "batch_agents", ()):
        if agent.concurrency != 1:
            print(f"error: PROCESSING_GUARANTEE=exactly_once needs concurrency=1, "
                  f"batch_agent {agent.name} has {agent.concurrency}: parallel instances "
                  "would commit the offsets of one partition out of order",
                  file=sys.stderr, flush=True)
            raise SystemExit(2)
    log.info("processing guarantee exactly_once: each batch part (one source partition) is "
             "one Kafka transaction with its outputs and offsets, read read_committed; a part "
             "that cannot commit (producer fenced, transaction timed out) stops the worker "
             "and it resumes from the committed offsets when restarted")
    tabledir = Path(app.conf.tabledir)
    if tabledir.exists():
        log.info("exactly-once: rebuilding tables from their committed changelogs "
                 "(removing %s)", tabledir)
        shutil.rmtree(tabledir)


def _track_changelog(table: Any) -> None:
    """Hand each changelog record written during a batch part to that part's transaction.

    Faust buffers changelog records and returns their futures; the part waits for those
    futures before it commits.
    """

    def track(future: FutureMessage) -> None:
        current = _CURRENT.get()
        if current is not None:
            current.changelog.append(future)

    on_changelog_send(table, track)


def transactions_enabled(app: Any) -> bool:
    """Whether `app` processes exactly-once (each batch part in a transaction)."""
    return bool(app.conf.processing_guarantee.value == EXACTLY_ONCE)


def in_transactions(app: Any, process: Callable[[Sequence[Any]], Awaitable[None]]
                    ) -> Callable[[Sequence[Any]], Awaitable[None]]:
    """`process` for exactly-once: each source partition's part of a batch in a transaction.

    With at_least_once, `process` is returned unchanged.
    """
    if not transactions_enabled(app):
        return process
    locks: dict[str, asyncio.Lock] = {}
    positions = SourcePositions(app, app.broker_reader)
    producer_generation: dict[TP, int] = {}  # the generation each tp's producer is from
    failed: list[BaseException] = []

    async def process_in_transactions(events: Sequence[Any]) -> None:
        # After a part failed the worker is stopping, but Faust restarts the crashed agent
        # meanwhile and feeds it the next records: the failed part's, and those the crashed
        # agent had buffered, are not among them, so a commit now would skip them.
        if failed:
            raise TransactionFailedError(
                f"a batch part was not committed ({failed[0]!r}); nothing more is "
                "committed until the worker restarts")
        for tp, part in _by_partition(events):
            tid = _transactional_id(app, tp)
            async with locks.setdefault(tid, asyncio.Lock()):
                try:
                    generation = part[0].message.generation_id
                    if producer_generation.get(tp) != generation:
                        await _renew_producer(app, tid)
                        producer_generation[tp] = generation
                    in_order = await positions.in_order(tp, part)
                    if in_order:
                        await _run_part(app, PartTransaction(tp, tid), in_order, process)
                except BaseException as exc:
                    failed.append(exc)
                    raise

    return process_in_transactions


def _by_partition(events: Sequence[Any]) -> Iterator[tuple[TP, list[Any]]]:
    parts: dict[TP, list[Any]] = {}
    for event in events:
        parts.setdefault(event.message.tp, []).append(event)
    yield from parts.items()


def _transactional_id(app: Any, tp: TP) -> str:
    """Faust's id for the transactional producer of a source partition (see
    `TransactionManager.transactional_id_format`)."""
    return f"{app.conf.id}-{app.assignor.group_for_topic(tp.topic)}-{tp.partition}"


async def _run_part(app: Any, part: PartTransaction, events: list[Any],
                    process: Callable[[Sequence[Any]], Awaitable[None]]) -> None:
    """Process `events` and commit them with their offsets."""
    producer = await _begin(app, part)
    token = _CURRENT.set(part)
    try:
        await process(events)
        await asyncio.gather(*part.changelog)
        offsets = {part.tp: events[-1].message.offset + 1}
        await producer.send_offsets_to_transaction(offsets, app.conf.id)
        await producer.commit_transaction()
        for tp, (store, offset) in part.changelog_offsets.items():
            store.set_persisted_offset(tp, offset)
    except BaseException as exc:
        # changelog records still in Faust's buffer would otherwise go out later, in the
        # partition's next transaction
        await asyncio.gather(*part.changelog, return_exceptions=True)
        await _abort(producer, part)
        if isinstance(exc, Exception) and not isinstance(exc, StreamsError):
            raise TransactionFailedError(
                f"{part.tp.topic}[{part.tp.partition}]: transaction {part.transactional_id} "
                f"failed: {type(exc).__name__}: {exc}; nothing of this part is committed, "
                "the worker stops and the part is processed again") from exc
        raise
    finally:
        _CURRENT.reset(token)
    TRANSACTIONS.labels("committed").inc()


async def _renew_producer(app: Any, transactional_id: str) -> None:
    """Replace this worker's producer for `transactional_id` at the first part of a
    consumer generation.

    Faust stops the producers of only some revoked partitions and keeps the others: when
    a partition comes back after another worker owned it, the kept producer was fenced by
    that worker's, but still looks in a transaction, so the part failed with
    ProducerFenced and the worker stopped. A new producer starts clean and aborts what a
    previous owner left open (init_transactions).
    """
    await app.producer.stop_transaction(transactional_id)
    await app.producer.begin_transaction(transactional_id)


async def _begin(app: Any, part: PartTransaction) -> Any:
    """The started aiokafka producer Faust keeps for the part's id, in a new transaction.

    Faust begins one when the partition is assigned; later ones are begun here.
    """
    producer = transaction_producer(app, part.transactional_id)
    if producer is None:
        raise TransactionFailedError(
            f"{part.tp.topic}[{part.tp.partition}]: no transactional producer "
            f"{part.transactional_id} (partition revoked, or the producer was fenced by a "
            "newer owner); the part is left to the partition's owner")
    if not in_transaction(producer):
        try:
            await producer.begin_transaction()
        except Exception as exc:
            raise TransactionFailedError(
                f"{part.tp.topic}[{part.tp.partition}]: cannot begin a transaction on "
                f"{part.transactional_id}: {type(exc).__name__}: {exc}") from exc
    return producer


async def _abort(producer: Any, part: PartTransaction) -> None:
    TRANSACTIONS.labels("aborted").inc()
    try:
        await producer.abort_transaction()
    except Exception as exc:  # fenced: the new owner's producer aborted it already
        log.warning("exactly-once: aborting %s failed (%s); the broker aborts it when the "
                    "partition's next owner starts", part.transactional_id, exc)
