"""Faust's Kafka consumer, handing the records of batch-agent topics over in bulk.

Faust's fetch loop (`Consumer._drain_messages`, faust-streaming 0.15, pinned) passes every
record to the conductor as `wait_first(callback(record), suspend_flow.wait())`: two tasks
and an `asyncio.wait` per record, then the conductor's per-record checks and decoding
into an event. For a batch agent that was a third of a worker's time. For topics a batch
agent reads, this loop builds the event itself and puts it on the agent's queue without
waiting: the queue is the one the conductor would have filled, with the same
back-pressure (a full queue pauses fetching of the partition until it drains) and the same
clearing on rebalance. Changelogs of tables on RocksDB go the same way, undecoded, to the
tables' recovery queue (see `_restores_raw`). Every other topic (plain Faust agents,
tables in memory) takes Faust's path unchanged.

Records of source topics (all but changelogs) also pass `streams.processing.fetch_order`,
which checks every jump in offsets with the broker before Faust may commit past it.

The loop is Faust's own with those two changes; keep it in step with the pinned Faust
version (tests/integration/test_batch_agents.py exercises it end to end).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, cast

from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.manager import TableManager
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from streams.processing.fetch_order import fetch_order, known_empty


class BrokerHighwaterThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, asking the broker for highwaters under read_committed too.

    Faust's recovery takes the changelog highwaters from here. With `isolation_level=
    read_committed` Faust returns the last stable offset the consumer saw in its last fetch
    of the partition: stale, or unknown (taken as -1) for a partition not fetched yet, so
    recovery saw nothing to restore, or stopped with ConsistencyError ("persisted offset
    ... is higher than the last offset in that topic (highwater) (859 > -1)") after a
    rebalance. aiokafka's `end_offsets` asks the broker with the consumer's isolation
    level: the log end offset, or the last stable offset under read_committed.
    """

    async def _highwaters(self, partitions: Any) -> Any:
        return await self._ensure_consumer().end_offsets(partitions)


class ResumeCountingFlowControl(FlowControlEvent):
    """Faust's flow control of the agents' queues, counting its resumes.

    Each resume clears the queues; `BatchingConsumer` delivers source records only after
    the resume that follows the seek ending a rebalance.
    """

    resumes = 0

    def resume(self) -> None:
        super().resume()
        self.resumes += 1


class BatchingConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer with a direct path for batch-agent topics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch_queues: dict[str, list[Any]] = {}
        self._pressure_callbacks: dict[TP, tuple[Callable[[], None], Callable[[], None]]] = {}
        self._order = fetch_order(self, cast(Any, self.app).broker_reader)  # a PlatformApp
        self._raw_changelogs: dict[str, bool] = {}
        self._changelog_room = asyncio.Event()  # the recovery queue is not full
        self._changelog_room.set()
        # the committed offset each partition was seeked to at the end of the last rebalance
        self._generation_start: dict[TP, int] = {}
        self._seeked_generation: int | None = None
        self._resumes_at_seek = 0

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
        self._resumes_at_seek = self._flow_control().resumes
        return committed

    def _flow_control(self) -> ResumeCountingFlowControl:
        # the app's (streams.app.PlatformApp.flow_control)
        return cast(ResumeCountingFlowControl, self.app.flow_control)

    def _streams_resumed(self) -> bool:
        """Whether source records may be delivered: the flow was resumed (and the agents'
        queues cleared) after this generation's seek to the committed offsets.

        Until then they are dropped, and fetched again from the seek's position. Faust
        resumes the flow during table recovery, to read the changelogs, and again after
        that seek: source records delivered in between were cleared from the queues
        while counted as delivered, and the commits stalled at the hole or, with a
        batch finished after a revoke, passed it.
        """
        flow_control = self._flow_control()
        return (flow_control.is_active()
                and self._seeked_generation == self.app.consumer_generation_id
                and flow_control.resumes > self._resumes_at_seek)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Finish the batches in hand and commit, then Faust's revoke.

        Faust forgets the acknowledgements it has not committed when partitions are
        revoked, and only then waits for the batches in hand: every rebalance brought back
        the batches in hand and up to a commit interval of finished work on every
        partition. Its first steps (stop the flow, clear the agents' queues, wait for the
        batches in hand, bounded by `PlatformApp._consumer_wait_empty`) are taken here
        before it forgets; it repeats them at once.
        """
        if self.assignment():
            self.stop_flow()
            self.app.flow_control.suspend()
            self.app.flow_control.clear()
            await cast(Any, self.app)._consumer_wait_empty(self, self.log)
            await self.commit()
        self._order.forget(revoked)
        for tp in revoked:
            self._generation_start.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next offset to commit, never past an offset nobody acknowledged.

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
        acked = self._acked[tp]
        if acked:
            start = self._generation_start.get(tp)
            if start is None:
                return None
            committed = self._committed_offset[tp]
            base = committed if committed is not None else start
            head = min(acked)
            if head > base and not known_empty(self._gap[tp], base, head):
                return None
        return super()._new_offset(tp)

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return BrokerHighwaterThread(self, loop=self.loop, beacon=self.beacon)

    def _restores_raw(self, topic: str) -> bool:
        """Whether `topic` is the changelog of a table on RocksDB.

        RocksDB restores the raw key and value bytes (`Store.apply_changelog_batch`), so
        these records go to the recovery queue undecoded, without the conductor's
        per-record tasks, lock and decoding; other stores decode them (Faust's path).
        """
        raw = self._raw_changelogs.get(topic)
        if raw is None:
            table = cast(TableManager, self.app.tables)._changelogs.get(topic)
            raw = self._raw_changelogs[topic] = (
                table is not None and isinstance(cast(Any, table).data, RocksDBStore))
        return raw

    async def _hand_over_changelog(self, message: Any) -> None:
        """Put a changelog record on the tables' recovery queue.

        As the conductor does, it waits while the flow is held or the queue is full, and
        drops the record if fetching stops meanwhile (recovery seeks the changelog again).
        Unlike the conductor, a full queue is waited on once until the recovery loop has
        emptied it (the queue's pressure callbacks), not once per record: that wait,
        two tasks per record, took a fifth of a restoring worker's time.
        """
        message.incref(1)
        event = self.app.create_event(message.key, message.value, message.headers, message)
        queue = cast(TableManager, self.app.tables).changelog_queue
        room = self._changelog_room
        if queue.empty():
            room.set()  # the queue was cleared (a resume of the flow)
        if not (room.is_set() and self.app.flow_control.is_active()):
            await self.wait_first(self._flowing_with_room(), self.suspend_flow.wait())
            if self.suspend_flow.is_set():
                return
        queue.put_nowait_enhanced(event, on_pressure_high=room.clear,
                                  on_pressure_drop=room.set)

    async def _flowing_with_room(self) -> None:
        room = self._changelog_room
        while not (room.is_set() and self.app.flow_control.is_active()):
            await self.app.flow_control.acquire()
            await room.wait()

    def deliver_to(self, topic: str, queue: Any) -> None:
        """Put every record of `topic` on `queue` (a batch agent's channel queue)."""
        self._batch_queues.setdefault(topic, []).append(queue)

    def _pressure(self, tp: TP) -> tuple[Callable[[], None], Callable[[], None]]:
        # The queue remembers pending pressure-drop callbacks by identity: one pair per TP.
        callbacks = self._pressure_callbacks.get(tp)
        if callbacks is None:
            faust_tp = TP(tp.topic, tp.partition)  # getmany yields aiokafka's own tuple type

            def on_high() -> None:
                self.app.sensors.on_topic_buffer_full(faust_tp)
                self.on_buffer_full(faust_tp)

            def on_drop() -> None:
                self.on_buffer_drop(faust_tp)

            callbacks = self._pressure_callbacks[tp] = (on_high, on_drop)
        return callbacks

    def _hand_over(self, queues: list[Any], tp: TP, message: Any) -> None:
        message.incref(len(queues))
        event = self.app.create_event(message.key, message.value, message.headers, message)
        on_high, on_drop = self._pressure(tp)
        for queue in queues:
            queue.put_nowait_enhanced(event, on_pressure_high=on_high,
                                      on_pressure_drop=on_drop)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        batch_queues = self._batch_queues
        hand_over = self._hand_over
        restores_raw = self._restores_raw
        hand_over_changelog = self._hand_over_changelog

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        admit = self._order.admit
        app = self.app
        streams_resumed = self._streams_resumed

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(Any, getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            queues = batch_queues.get(tp.topic)
                            # a source record dropped here is fetched again after the
                            # rebalance's seek; Faust noted any jump as a gap, the order
                            # checks it
                            if acks_enabled_for(message.topic) and (
                                    message.generation_id != app.consumer_generation_id
                                    or not streams_resumed()
                                    or not await admit(tp, offset)):
                                continue
                            if queues:
                                hand_over(queues, tp, message)
                            elif restores_raw(tp.topic):
                                await hand_over_changelog(message)
                            else:
                                await self.wait_first(callback(message),
                                                      self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class BatchingTransport(AIOKafkaTransport):
    """Faust's aiokafka transport, creating a `BatchingConsumer`."""

    Consumer = BatchingConsumer
