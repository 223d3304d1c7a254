"""The platform's consumer: records of batch-agent topics handed over in bulk, in order.

Faust's fetch loop passes every record to the conductor as `wait_first(callback(record),
suspend_flow.wait())`: two tasks and an `asyncio.wait` per record, then the conductor's
per-record checks and decoding into an event. For a batch agent that was a third of a
worker's time. For topics a batch agent reads, the fetch loop builds a partition's
fetched records as events itself (`RecordMessage`) and `BatchingConsumer` puts them on
the agent's queue together: the queue
is the one the conductor would have filled, with the same clearing on rebalance; its
back-pressure holds the next fetch while the queue is full and pauses the partitions only
after a while (`wait_for_room`, streams.processing.back_pressure). Changelogs of tables
on RocksDB go to the tables' recovery queue undecoded (see `restores_raw`). Every other
topic (plain Faust agents, tables in memory) takes Faust's path unchanged.

Records of source topics (all but changelogs) also pass `streams.processing.fetch_order`,
which checks every jump in offsets with the broker before Faust may commit past it.

The fetch loop itself, and the hooks this class implements, are in
`streams._faust.consumer` (tests/integration/test_batch_agents.py exercises them end to end).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, cast

from faust.exceptions import ConsumerNotStarted
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.manager import TableManager
from faust.types import TP, Message
from mode.utils.queues import FlowControlEvent

from streams._faust.consumer import (
    EventQueue,
    HookedConsumer,
    HookedTransport,
    M,
    put_all_nowait,
)
from streams._faust.events import RecordMessage, incref_all
from streams._faust.tables import changelog_table
from streams.observability import metrics
from streams.processing.back_pressure import is_full, wait_for_room
from streams.processing.fetch_order import fetch_order, known_empty


class ResumeCountingFlowControl(FlowControlEvent):
    """Faust's flow control of the agents' queues, counting its resumes.

    Each resume clears the queues; `BatchingConsumer` delivers source records only after
    the resume that follows the seek ending a rebalance.
    """

    resumes = 0

    def resume(self) -> None:
        super().resume()
        self.resumes += 1


class BatchingConsumer(HookedConsumer):
    """Faust's aiokafka consumer with a direct path for batch-agent topics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch_queues: dict[str, list[EventQueue]] = {}
        self._pressure_callbacks: dict[TP, tuple[Callable[[], None], Callable[[], None]]] = {}
        self._paused_queues: set[EventQueue] = set()  # see wait_for_room
        self._order = fetch_order(self, cast(Any, self.app).broker_reader)  # a PlatformApp
        self.fetch_max_wait_ms = cast(Any, self.app).platform_settings.fetch_max_wait_ms
        self._raw_changelogs: dict[str, bool] = {}
        self._changelog_room = asyncio.Event()  # the recovery queue is not full
        self._changelog_room.set()
        # the committed offset each partition was seeked to at the end of the last rebalance
        self._generation_start: dict[TP, int] = {}
        self._seeked_generation: int | None = None
        self._resumes_at_seek = 0
        self._dropped_before_resume: set[TP] = set()  # see admit_sources
        # see recovery_queue_cleared: the first offset of each changelog partition put on
        # the recovery queue since it was last emptied, and the partitions fetched again
        # (their records are dropped until one at or before the offset comes)
        self._queued_from: dict[TP, int] = {}
        self._reread_from: dict[TP, int] = {}
        self._seeks_back: set[asyncio.Future[None]] = set()

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self._order.expect(partition, offset)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Faust's seek to the committed offsets, at the end of each rebalance."""
        committed = await super().seek_to_committed()
        for tp, offset in committed.items():
            if offset is not None and offset >= 0:
                self._order.expect(tp, offset)
                self._generation_start[tp] = offset
            else:  # nothing committed: read from the start (auto.offset.reset)
                self._generation_start[tp] = 0
        self._seeked_generation = self.app.consumer_generation_id
        self._resumes_at_seek = self.resume_counter().resumes
        return committed

    def resume_counter(self) -> ResumeCountingFlowControl:
        # the app's (streams.app.PlatformApp.flow_control)
        return cast(ResumeCountingFlowControl, self.app.flow_control)

    def streams_resumed(self) -> bool:
        """Whether source records may be delivered: the flow was resumed (and the agents'
        queues cleared) after this generation's seek to the committed offsets.

        Until then they are dropped, and fetched again from the seek's position. Faust
        resumes the flow during table recovery, to read the changelogs, and again after
        that seek: source records delivered in between were cleared from the queues
        while counted as delivered, and the commits stalled at the hole or, with a
        batch finished after a revoke, passed it.
        """
        flow_control = self.resume_counter()
        return (flow_control.is_active()
                and self._seeked_generation == self.app.consumer_generation_id
                and flow_control.resumes > self._resumes_at_seek)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Finish the batches in hand and commit, then Faust's revoke.

        Faust forgets the acknowledgements it has not committed when partitions are
        revoked, and only then waits for the batches in hand: every rebalance brought back
        the batches in hand and up to a commit interval of finished work on every
        partition. Its first steps (stop the flow, clear the agents' queues, wait for the
        batches in hand, bounded by `streams._faust.app.FaustApp`) are taken here
        before it forgets; it repeats them at once.
        """
        if self.assignment():
            self.stop_flow()
            self.app.flow_control.suspend()
            self.app.flow_control.clear()
            await self.wait_for_batches_in_hand()
            await self.commit()
        self._order.forget(revoked)
        for tp in revoked:
            self._generation_start.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def admit_sources(self, tp: TP, messages: list[M]) -> list[M]:
        """The source records of `messages` that may be delivered now.

        Before the streams are resumed (`streams_resumed`) none may: they are dropped, and
        the partition is seeked back to its next expected offset once they are
        (`before_fetch`). Faust seeks to the committed offsets before it resumes, with an
        await in between, so a fetch from the seeked position can arrive first; without
        the seek back, a partition that received no later record (the next one would show
        the jump) stayed behind those records until the next rebalance. Otherwise Faust
        would have noted any jump as a gap; `FetchOrder` checks it with the broker.
        """
        generation = self.app.consumer_generation_id
        if messages[0].generation_id != generation or not self.streams_resumed():
            self._dropped_before_resume.add(tp)
            return []  # one fetch's records are all of one generation
        return await self._order.admit_all(tp, messages)

    async def before_fetch(self) -> None:
        """Once the streams are resumed, seek the partitions whose records were dropped
        before (`admit_sources`) back to the offset each must deliver next."""
        if not self._dropped_before_resume or not self.streams_resumed():
            return
        dropped, self._dropped_before_resume = self._dropped_before_resume, set()
        for tp in dropped:
            start = self._generation_start.get(tp)
            if start is None:
                continue  # revoked since
            offset = self._order.expected(tp)
            # nothing committed and nothing delivered yet: from the generation's start
            # (0; the consumer resets to the earliest offset if the log starts later)
            await self.seek(tp, start if offset is None else offset)

    def may_commit(self, tp: TP, head: int, committed: int | None) -> bool:
        """Whether Faust may commit `tp` now: never past an offset nobody acknowledged.

        The head of the acknowledged offsets must be the committed offset, or the offsets
        between must be known to hold no record (the fetch order check notes those). Faust's own
        rule lets the head be one above the committed offset (for a transaction marker
        there, which its gap tracker leaves out), and has no rule at all while it does
        not know the committed offset: from a revoke until the seek that ends the
        rebalance, and for a partition whose committed offset is 0. A single record never
        acknowledged at the head was committed past that way (2 records lost in a
        200,000-record kill -9 run), and acknowledgements of a batch finished after its
        partition was revoked are the likely way a range of records was (573 in a
        20,000-record run). So nothing is committed for a partition before this
        generation's seek: the new owner processes such a batch again.
        """
        start = self._generation_start.get(tp)
        if start is None:
            return False
        base = committed if committed is not None else start
        return head <= base or known_empty(self.gaps(tp), base, head)

    def caught_up(self, topic: str) -> bool:
        """Whether the fetch loop has delivered every record the assigned partitions of
        `topic` held when they were last fetched (an agent may not have taken them all).

        False while it is not known: a partition not fetched yet, records in the fetch
        loop's hands or in the consumer's buffer.
        """
        if self.records_in_hand:
            return False
        try:
            for tp in self.assignment():
                if tp.topic != topic:
                    continue
                highwater = self.highwater(tp)
                delivered = self.delivered_up_to(tp)
                if highwater is None or highwater < 0:
                    return False
                if (highwater > 0) if delivered is None else (delivered + 1 < highwater):
                    return False
        # not started yet (an agent's test context), or no longer assigned in aiokafka
        # (a rebalance began)
        except (ConsumerNotStarted, AssertionError):
            return False
        return True

    def direct_queues(self, topic: str) -> list[EventQueue] | None:
        return self._batch_queues.get(topic)

    def restores_raw(self, topic: str) -> bool:
        """Whether `topic` is the changelog of a table on RocksDB.

        RocksDB restores the raw key and value bytes (`Store.apply_changelog_batch`), so
        these records go to the recovery queue undecoded, without the conductor's
        per-record tasks, lock and decoding; other stores decode them (Faust's path).
        """
        raw = self._raw_changelogs.get(topic)
        if raw is None:
            table = changelog_table(self.app, topic)
            raw = self._raw_changelogs[topic] = (
                table is not None and isinstance(cast(Any, table).data, RocksDBStore))
        return raw

    async def hand_over_changelog(self, message: Message) -> bool:
        """Put a changelog record on the tables' recovery queue; False if it is dropped.

        As the conductor does, it waits while the flow is held or the queue is full, and
        drops the record if fetching stops meanwhile (recovery seeks the changelog again).
        It also drops the records of a partition being fetched again
        (`recovery_queue_cleared`) until the first one fetched again comes.
        Unlike the conductor, a full queue is waited on once until the recovery loop has
        emptied it (the queue's pressure callbacks), not once per record: that wait,
        two tasks per record, took a fifth of a restoring worker's time.
        """
        queue = cast(TableManager, self.app.tables).changelog_queue
        room = self._changelog_room
        if queue.empty():
            room.set()  # the queue was cleared (a resume of the flow)
        if not (room.is_set() and self.app.flow_control.is_active()):
            await self.wait_first(self._flowing_with_room(), self.suspend_flow.wait())
            if self.suspend_flow.is_set():
                return False
        tp, offset = message.tp, message.offset
        reread_from = self._reread_from.get(tp)
        if reread_from is not None:
            if offset > reread_from:
                return False  # fetched before the seek back: it comes again
            del self._reread_from[tp]
        message.incref(1)
        event = self.app.create_event(message.key, message.value, message.headers, message)
        queue.put_nowait_enhanced(event, on_pressure_high=room.clear,
                                  on_pressure_drop=room.set)
        self._queued_from.setdefault(tp, offset)
        return True

    def recovery_queue_cleared(self) -> None:
        """The tables' recovery queue was emptied (streams._faust.recovery): fetch again,
        from the first record put on it since it was last emptied, each changelog
        partition it held records of, and drop that partition's records until that one
        comes again.

        Faust empties the queue whenever the flow resumes, also after its recovery has
        seeked the partitions: the recovery never got the records dropped then, and the
        consumer had gone past them. The records the fetch loop still holds come after
        the dropped ones; delivered, they would have been read and the dropped ones
        skipped as read when they came again. A rebalance empties the queue with the flow
        stopped; its recovery round then seeks every changelog partition itself.

        The seek is made in the consumer's thread (Faust's `seek_wait`), after the fetch
        in progress there; the drop rule does not depend on when it is done.
        """
        queued, self._queued_from = self._queued_from, {}
        if not self.app.flow_control.is_active():
            self._reread_from.clear()
            return
        assigned = self.assignment()
        offsets = {tp: offset for tp, offset in queued.items() if tp in assigned}
        if not offsets:
            return
        for tp, offset in offsets.items():
            self._reread_from[tp] = min(offset, self._reread_from.get(tp, offset))
        self.log.info("the recovery queue was emptied; fetching %s again",
                      ", ".join(f"{tp.topic}[{tp.partition}] from {offset}"
                                for tp, offset in sorted(offsets.items())))
        task = asyncio.ensure_future(self._seek_back(offsets))
        self._seeks_back.add(task)
        task.add_done_callback(self._seeks_back.discard)

    async def _seek_back(self, offsets: dict[TP, int]) -> None:
        try:
            await self.seek_wait(offsets)
        except Exception as exc:  # given up meanwhile: the next rebalance seeks them
            self.log.warning(
                "fetching changelog partitions %s again failed: %r",
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(offsets)), exc)
            for tp in offsets:
                self._reread_from.pop(tp, None)

    def changelogs_settled(self, tps: set[TP]) -> bool:
        """Whether the consumer's positions of `tps` are past only records the recovery
        queue got: the fetch loop holds no records, and none is to be fetched again."""
        return not self.records_in_hand and not self._reread_from.keys() & tps

    async def _flowing_with_room(self) -> None:
        room = self._changelog_room
        while not (room.is_set() and self.app.flow_control.is_active()):
            await self.app.flow_control.acquire()
            await room.wait()

    def deliver_to(self, topic: str, queue: EventQueue) -> None:
        """Put every record of `topic` on `queue` (a batch agent's channel queue)."""
        self._batch_queues.setdefault(topic, []).append(queue)

    def _pressure(self, tp: TP) -> tuple[Callable[[], None], Callable[[], None]]:
        # The queue remembers pending pressure-drop callbacks by identity: one pair per TP.
        callbacks = self._pressure_callbacks.get(tp)
        if callbacks is None:
            faust_tp = TP(tp.topic, tp.partition)  # getmany yields aiokafka's own tuple type

            def on_high() -> None:
                metrics.CONSUMER_BUFFER_FULL.labels(faust_tp.topic).inc()
                self.app.sensors.on_topic_buffer_full(faust_tp)
                self.on_buffer_full(faust_tp)

            def on_drop() -> None:
                self.on_buffer_drop(faust_tp)

            callbacks = self._pressure_callbacks[tp] = (on_high, on_drop)
        return callbacks

    async def wait_for_room(self) -> None:
        """Wait for room in the batch agents' queues, then pause the partitions of the
        queues still full (streams.processing.back_pressure).

        A queue whose partitions were paused is not waited for again until it has room:
        an agent stuck for long (a transient failure) must not slow the fetches of every
        other topic to one a second.
        """
        self._paused_queues = {queue for queue in self._paused_queues if is_full(queue)}
        waiting = {topic: [queue for queue in queues if queue not in self._paused_queues]
                   for topic, queues in self._batch_queues.items()}
        full = await wait_for_room(waiting, stopping=lambda: self.should_stop)
        for tp in self.assignment() if full else ():
            for queue in full.get(tp.topic, ()):
                self._paused_queues.add(queue)
                on_high, on_drop = self._pressure(tp)
                if queue.in_pressure_high_state(on_drop):
                    on_high()

    def hand_over_all(self, queues: list[EventQueue], tp: TP,
                      messages: list[RecordMessage]) -> None:
        """Put `messages` on `queues` (back-pressure: `wait_for_room`)."""
        incref_all(messages, len(queues))
        for queue in queues:
            put_all_nowait(queue, messages)


class BatchingTransport(HookedTransport):
    """Faust's aiokafka transport, creating a `BatchingConsumer`."""

    Consumer = BatchingConsumer
