"""The table changes of one batch: collected while the handler runs, written after it.

A batch agent opens a `PendingWrites` for each batch (`collecting`); `TableBatch` blocks
put their coalesced changes into it. Once the batch is handled, `commit` sends every
change to its table's changelog partition (the partition of the record it came from),
waits for the brokers' acknowledgements, and only then writes them to the local store
(one RocksDB write batch per partition) and records the changelog offset up to which the
store is complete. The agent acknowledges the batch's records after that, so a committed
source offset always has its table changes in the changelog.

Why not Faust's `table[key] = value`: it sends each change through Faust's producer
buffer (a queue, a task switch and an event per record) and writes RocksDB and the
persisted offset once per change; for batches that cost more than everything else the
agent did. Here the changelog records go straight to the producer Faust itself uses (the
transactional one under exactly-once) as one record batch per partition (see
streams.kafka.record_batches), and the store gets one write per partition.

With pipelining (see streams.processing.agents) the next batch is handled while this
one's acknowledgements are awaited: `commit` is then `send` and, later, `finish`, and
the next batch's `PendingWrites` reads this one's changes (`previous`) until they are in
the store.

A handler call that raises leaves nothing behind: `BatchProcessor` takes a `savepoint`
before each call and rolls back to it, so a retried call starts from the same state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from streams._faust import store as faust_store
from streams._faust.producers import aiokafka_producer
from streams._faust.tables import track_window_expiry
from streams.kafka.record_batches import BatchProducer, Record, SentBatch, send_batches
from streams.processing.transactions import current_transactional_id, persist_when_committed
from streams.state.cache import ValueCache, forget_all

_CURRENT: ContextVar[PendingWrites | None] = ContextVar("streams_pending_writes", default=None)


@dataclass(slots=True)
class Change:
    """One key's new value in one table, and its key encoded as the store and changelog
    hold it.

    The value is encoded when the change is sent (`value_bytes` None until then): a key
    changed by many batches of one commit interval is encoded once, in its last value.
    """

    table: Any  # the Faust table
    partition: int
    key: Any
    value: Any
    key_bytes: bytes
    value_bytes: bytes | None = None
    cache: ValueCache | None = None  # the table's cache, given the value once it is stored


class PendingWrites:
    """The changes of one batch, by table and key: the last change of a key wins."""

    def __init__(self, previous: PendingWrites | None = None) -> None:
        self._changes: dict[tuple[str, bytes], Change] = {}
        self._previous = previous
        self._sent: list[tuple[Any, str, list[SentBatch]]] = []
        # what each `put` replaced, oldest first, for `rollback`: a savepoint is a position
        # in it, so taking one costs nothing however many changes a window holds (a copy
        # of the changes, three per batch, was a tenth of a job with many distinct keys)
        self._undo: list[tuple[tuple[str, bytes], Change | None]] = []

    def put(self, change: Change) -> None:
        key = (change.table.name, change.key_bytes)
        changes = self._changes
        self._undo.append((key, changes.get(key)))
        changes[key] = change

    def get(self, table: Any, key_bytes: bytes) -> Change | None:
        """This batch's change of the key, else the previous batch's while that one is
        still being written (its store write waits for its changelog acknowledgements)."""
        key = (table.name, key_bytes)
        change = self._changes.get(key)
        if change is None and self._previous is not None:
            change = self._previous._changes.get(key)
        return change

    def own_change(self, table: Any, key_bytes: bytes) -> Change | None:
        """This batch's change of the key (not the previous batch's)."""
        return self._changes.get((table.name, key_bytes))

    def __len__(self) -> int:
        return len(self._changes)

    def savepoint(self) -> int:
        """A point `rollback` can return to."""
        return len(self._undo)

    def rollback(self, savepoint: int) -> None:
        """Undo every `put` since `savepoint` was taken."""
        changes, undo = self._changes, self._undo
        while len(undo) > savepoint:
            key, replaced = undo.pop()
            if replaced is None:
                del changes[key]
            else:
                changes[key] = replaced
        forget_all()  # the failed call may have changed cached values in place

    def keep(self) -> None:
        """Make the changes so far final: no savepoint taken until now is rolled back to
        (forgets what `rollback` would need)."""
        self._undo.clear()

    async def commit(self, app: Any, producer: BatchProducer | None = None) -> None:
        """Changelog first (acknowledged), then the local stores and their offsets.

        The changelog records go through `producer`, by default Faust's (the batch part's
        transactional one under exactly-once).
        """
        await self.send(app, producer)
        await self.finish(app)

    async def send(self, app: Any, producer: BatchProducer | None = None) -> None:
        """Hand the changes to the producer as changelog record batches; returns once they
        are queued, not acknowledged (see `finish`)."""
        if not self._changes:
            return
        if producer is None:
            producer = await aiokafka_producer(app, current_transactional_id())
        for table, changes in self._by_table():
            topic = table.changelog_topic.get_topic_name()
            store = table.data
            for change in changes:
                if change.value_bytes is None:
                    change.value_bytes = faust_store.encode_value(store, change.value)
            records: list[Record] = [(c.partition, c.key_bytes, c.value_bytes, [])
                                     for c in changes]
            self._sent.append((table, topic, await send_batches(producer, topic, records)))

    async def finish(self, app: Any) -> None:
        """Wait for the changelog acknowledgements, then write the local stores and the
        changelog offsets up to which they are complete."""
        if not self._changes:
            return
        highest: dict[tuple[str, TP], tuple[Any, int]] = {}
        for table, topic, batches in self._sent:
            for batch in batches:  # in order per partition: the last one is the highest
                highest[(table.name, TP(topic, batch.partition))] = (
                    table, await batch.last_offset())
        for table, changes in self._by_table():
            faust_store.write(table.data, changes)
            track_window_expiry(table, ((c.key, c.partition) for c in changes))
            cache = changes[0].cache  # every change of a table carries the table's cache
            if cache is not None:
                cache.put_all((c.key, c.value, c.partition) for c in changes)
        for (_, tp), (table, offset) in highest.items():
            _persist_offset(app, table.data, tp, offset)
        self._changes.clear()
        self._undo.clear()
        self._sent.clear()
        self._previous = None

    def _by_table(self) -> list[tuple[Any, list[Change]]]:
        """(Faust table, its changes), one pair per table."""
        by_name: dict[str, list[Change]] = {}
        for change in self._changes.values():
            by_name.setdefault(change.table.name, []).append(change)
        return [(changes[0].table, changes) for changes in by_name.values()]


#: The pending writes handled but not yet in the stores (streams.processing.pipeline's open
#: window and the one in flight), oldest first.
_LIVE: list[PendingWrites] = []


def register_live(writes: PendingWrites) -> None:
    """Make `writes` visible to `latest_change` until `unregister_live`."""
    _LIVE.append(writes)


def unregister_live(writes: PendingWrites) -> None:
    """`writes` is in the stores, or given up: lookups read the stores again."""
    with contextlib.suppress(ValueError):
        _LIVE.remove(writes)


def latest_change(table: Any, key_bytes: bytes) -> Change | None:
    """The newest change of the key that is handled but not in the store yet, if any:
    what a lookup of the table must return (the pipeline commits changes in windows)."""
    for writes in reversed(_LIVE):
        change = writes.own_change(table, key_bytes)
        if change is not None and change.table is table:  # not another app's namesake
            return change
    return None


def current() -> PendingWrites | None:
    """The pending writes of the batch being handled in this task, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def collecting(writes: PendingWrites) -> Iterator[PendingWrites]:
    """Make `writes` where `TableBatch` blocks of this task put their changes."""
    token = _CURRENT.set(writes)
    try:
        yield writes
    finally:
        _CURRENT.reset(token)


def _persist_offset(app: Any, store: Any, tp: TP, offset: int) -> None:
    """As Faust's `Collection._on_changelog_sent`: under exactly-once the offset is
    written when the batch part's transaction commits, otherwise at once."""
    if app.in_transaction:
        persist_when_committed(store, tp, offset)
    else:
        store.set_persisted_offset(tp, offset)
