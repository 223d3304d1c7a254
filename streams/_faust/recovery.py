"""Faust's table recovery: a restore step before it, and ending a recovery from outside
its loop.

Faust's `Recovery` reads every changelog record through the worker's consumer, one event
at a time. `RestoreFirstRecovery` lets a restore step (`restore`, set by
`streams.state.restore.install_bulk_restore`) bring the active table partitions up to
their changelog's end first, outside the rebalance callback, and then hands the
assignment to Faust, which reads the persisted offsets and finds nothing left (or only
what was written meanwhile). A rebalance or shutdown cancels the step.

`RestoreFirstTableManager` also keeps the changelog records Faust drops from its recovery
queue: Faust empties that queue whenever the flow resumes, which it does twice more after
it has seeked the standby partitions (once to read them, once after seeking the streams
to their committed offsets). Standby records fetched and queued in between were dropped
while the consumer went on past them, so the standby store missed them for good, and its
persisted offset, taken from later records, said it had them: after a failover the new
active owner served old values, or none, for those keys (a table count short by every
update before the drop). The queue now tells the consumer when it is emptied, and the
consumer fetches what it dropped again
(`streams.processing.consumer.BatchingConsumer.recovery_queue_cleared`).

The step returns the end offsets it read up to. Faust's recovery would ask the broker for
them again through the worker's consumer, whose requests wait behind its fetch long-poll
(`fetch_max_wait_ms`, 1.5 s: Faust pauses partitions in its own fetch loop, not in
aiokafka), about 2 s per rebalance; it takes them from the step instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, cast

import faust
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP, ConsumerT
from mode.utils.queues import ThrowableQueue

log = logging.getLogger(__name__)

#: restores the active changelog partitions given; returns, for those it read to their
#: end, the end offset (the offset after the last record) its persisted offsets reach
RestoreStep = Callable[[Recovery, set[TP]], Awaitable[Mapping[TP, int]]]


def end_recovery(recovery: Recovery) -> None:
    """End the recovery round as Faust's recovery loop does once every active changelog
    partition is read up to its highwater: flush the tables' buffers, mark it ended and
    wake the waiters."""
    recovery.flush_buffers()
    recovery._set_recovery_ended()
    recovery.signal_recovery_end.set()


class RestoreFirstRecovery(Recovery):
    """Faust's recovery, after `restore` on each rebalance (see the module docstring).

    Faust calls `on_rebalance` from the consumer's rebalance callback, which must return
    quickly; the restore runs in a task and passes the assignment on to Faust's recovery
    when it ends, failed or not (persisted offsets are only written with the records they
    cover, so Faust goes on from wherever the restore got).
    """

    restore: RestoreStep | None = None
    restoring: asyncio.Future[None] | None = None
    #: end offsets the last restore step read up to, for Faust's next recovery round
    restored_ends: Mapping[TP, int] = {}

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP],
                           newly_assigned: set[TP], generation_id: int = 0) -> None:
        self.cancel_restore()
        self.restored_ends = {}
        actives = {tp for tp in self.app.assignor.assigned_actives()
                   if tp.topic in self.tables.changelog_topics}
        if self.restore is None or not actives \
                or generation_id != self.app.consumer_generation_id:
            await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
            return
        self.restoring = asyncio.ensure_future(self.restore_then_recover(
            self.restore, actives, assigned, revoked, newly_assigned, generation_id))

    async def restore_then_recover(self, restore: RestoreStep, actives: set[TP],
                                    assigned: set[TP], revoked: set[TP],
                                    newly_assigned: set[TP], generation_id: int) -> None:
        try:
            self.restored_ends = await restore(self, actives)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("restoring tables in bulk failed; the changelog records left are "
                        "read one by one", exc_info=True)
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)

    async def _build_highwaters(self, consumer: ConsumerT, tps: set[TP],
                                destination: Counter[TP], title: str) -> None:
        ends = self.restored_ends
        if title != "active" or not tps or not tps <= ends.keys():
            await super()._build_highwaters(consumer, tps, destination, title)
            return
        # Faust keeps the highwater of a partition that stayed assigned as a standby; with
        # its active offset dropped it would count as left to restore, forever.
        for tp in set(destination) - tps:
            del destination[tp]
        for tp in tps:
            destination[tp] = ends[tp] - 1  # Faust's highwater: the last record's offset

    async def _build_offsets(self, consumer: ConsumerT, tps: set[TP],
                             destination: Counter[TP], title: str) -> None:
        # The persisted offsets Faust has just read back are at least the earliest
        # offset - 1 (the restore started there), which is all Faust asks the broker for.
        if title != "active" or not tps or not tps <= self.restored_ends.keys() \
                or any(destination.get(tp) is None for tp in tps):
            await super()._build_offsets(consumer, tps, destination, title)

    def cancel_restore(self) -> None:
        """Stop a running restore step. Its writes are synchronous between awaits, so none
        happens after this returns."""
        if self.restoring is not None and not self.restoring.done():
            self.restoring.cancel()

    def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self.cancel_restore()
        super().on_partitions_revoked(revoked)

    async def on_stop(self) -> None:
        restoring, self.restoring = self.restoring, None
        if restoring is not None:
            restoring.cancel()
            await asyncio.gather(restoring, return_exceptions=True)
        await super().on_stop()


class ChangelogQueue(ThrowableQueue):
    """Faust's recovery queue (emptied when the flow resumes), calling `on_clear` each
    time it is emptied."""

    def __init__(self, *args: Any, on_clear: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_clear = on_clear

    def clear(self) -> None:
        super().clear()
        self.on_clear()


class RereadsChangelogs(Protocol):
    """A consumer that fetches again what the recovery queue dropped
    (`streams.processing.consumer.BatchingConsumer`)."""

    def recovery_queue_cleared(self) -> None: ...


class RestoreFirstTableManager(TableManager):
    """Faust's table manager with `RestoreFirstRecovery` (the `TableManager` setting),
    whose recovery queue has the records it drops fetched again (see the module)."""

    rereading_queue: ChangelogQueue | None = None

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = RestoreFirstRecovery(self.app, self, beacon=self.beacon,
                                                  loop=self.loop)
        return self._recovery

    @property
    def changelog_queue(self) -> ThrowableQueue:
        """Faust's queue (`TableManager.changelog_queue`, `App.FlowControlQueue`), telling
        the consumer when it is emptied."""
        if self.rereading_queue is None:
            self.rereading_queue = ChangelogQueue(
                maxsize=self.app.conf.stream_buffer_maxsize,
                flow_control=self.app.flow_control, clear_on_resume=True,
                on_clear=self.queue_cleared)
        return self.rereading_queue

    def queue_cleared(self) -> None:
        # not created here if the worker has none yet
        consumer = cast(faust.App, self.app)._consumer
        if consumer is not None and hasattr(consumer, "recovery_queue_cleared"):
            cast(RereadsChangelogs, consumer).recovery_queue_cleared()


def use_restore_step(app: Any, restore: RestoreStep) -> bool:
    """Run `restore` before Faust's recovery of each new assignment; False when the app's
    table manager is not `RestoreFirstTableManager`."""
    recovery = app.tables.recovery
    if not isinstance(recovery, RestoreFirstRecovery):
        return False
    recovery.restore = restore
    return True
