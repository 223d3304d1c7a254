"""Faust's aiokafka consumer, with the private steps the platform changes turned into hooks.

`HookedConsumer` overrides four private methods of Faust's consumer and one of its
consumer thread:

- `_drain_messages`, Faust's fetch loop (faust-streaming 0.15, copied, with Faust's
  `getmany` folded in): every record went to the conductor as `wait_first(callback(record),
  suspend_flow.wait())`, two tasks and an `asyncio.wait` per record, after `getmany` had
  checked the generation and flow and updated the highwater metric per record. The copy
  takes each partition's fetched records at once: for topics `direct_queues` has queues
  for, they become `RecordMessage`s (each its own event), pass `admit_sources` together
  and go to the queues together
  (`hand_over_all`); other topics keep the per-record path, round-robin between
  partitions, where changelogs for which `restores_raw` is true go to
  `hand_over_changelog`, and records of topics with acks enabled pass `admit_sources`
  first. Faust's own gap bookkeeping is left to `admit_sources`. Before each fetch it
  awaits `before_fetch` and `wait_for_room`.
- `_new_offset`, Faust's next offset to commit: consults `may_commit` first.
- `_commit_offsets`, Faust's commit: a commit that failed is not recorded as made.
- `_new_consumer_thread`: `BrokerHighwaterThread`, whose `_highwaters` asks the broker
  and whose `_create_worker_consumer` sets the fetch long-poll (`fetch_max_wait_ms`).

Subclasses (streams.processing.consumer) implement the hooks with public names only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, cast

import faust
from aiokafka import AIOKafkaConsumer as AIOKafkaClient
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP, EventT, Message
from mode import Service, ServiceT
from mode.utils.queues import ThrowableQueue

from streams._faust.events import RecordMessage
from streams._faust.producers import IdempotentProducer


class GapInterval(Protocol):
    """Offsets [begin, end) without a record (an `intervaltree.Interval`)."""

    begin: int
    end: int


class GapTree(Protocol):
    """Faust's record of offsets that hold no record (an `intervaltree.IntervalTree`)."""

    def addi(self, begin: int, end: int) -> None: ...

    def merge_overlaps(self) -> None: ...

    def overlap(self, begin: int, end: int) -> set[GapInterval]: ...


M = TypeVar("M", bound=Message)

#: A batch agent's channel queue, which the fetch loop fills directly.
EventQueue = ThrowableQueue[EventT[Any]]


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

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()
        return cast(Mapping[TP, int], await consumer.end_offsets(partitions))

    def _create_worker_consumer(self, transport: AIOKafkaTransport) -> AIOKafkaClient:
        """Faust's worker consumer, with the fetch long-poll of the `HookedConsumer`.

        Faust fixes it at 1.5 s. aiokafka sends one fetch per broker at a time, and only
        for partitions whose fetched records were all taken; a fetch of only quiet
        partitions (the assignor's topic, changelogs Faust leaves unconsumed) then held
        back the next fetch of busy partitions for up to 1.5 s, several times a second
        under load: a third of a sink job's throughput.
        """
        client = super()._create_worker_consumer(transport)
        # read by aiokafka when the consumer starts and creates its fetcher
        client._fetch_max_wait_ms = cast(HookedConsumer, self.consumer).fetch_max_wait_ms
        return client


class HookedConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer whose fetch loop and commit rule call public hooks.

    The defaults keep Faust's behaviour (except for gaps, noted by `admit_sources`).
    """

    # -- hooks ------------------------------------------------------------------------

    def direct_queues(self, topic: str) -> list[EventQueue] | None:
        """Queues that take every record of `topic` directly (None: Faust's conductor)."""
        return None

    def hand_over_all(self, queues: list[EventQueue], tp: TP,
                      messages: list[RecordMessage]) -> None:
        """Put `messages` (fetched records of `tp`, in offset order, each its own event)
        on `queues` (those `direct_queues` returned)."""
        raise NotImplementedError

    def restores_raw(self, topic: str) -> bool:
        """Whether records of `topic` go to `hand_over_changelog`."""
        return False

    async def hand_over_changelog(self, message: Message) -> bool:
        """Put a changelog record on the tables' recovery queue; False if it was dropped
        instead."""
        raise NotImplementedError

    #: Whether the fetch loop holds fetched records it has not delivered (or dropped) yet:
    #: the consumer's position is then past records nobody has seen.
    records_in_hand: bool = False

    async def before_fetch(self) -> None:
        """Called first in each round of the fetch loop (it may seek)."""

    async def wait_for_room(self) -> None:
        """Called before each fetch: may wait until the queues have room for it."""

    #: How long a fetch may wait at the broker for records (aiokafka's fetch_max_wait_ms).
    fetch_max_wait_ms: int = 1500

    async def admit_sources(self, tp: TP, messages: list[M]) -> list[M]:
        """Those of `messages` (records of `tp` with acks enabled, in offset order) that
        may be delivered."""
        return messages

    def may_commit(self, tp: TP, head: int, committed: int | None) -> bool:
        """Whether offsets may be committed for `tp` while `head` is the lowest
        acknowledged offset and `committed` the last committed one (None: not known)."""
        return True

    # -- public views of Faust's private state ------------------------------------------

    def gaps(self, tp: TP) -> GapTree:
        """The offsets of `tp` known to hold no record, which Faust may commit past."""
        return cast(GapTree, self._gap[tp])

    def note_no_records(self, tp: TP, begin: int, end: int) -> None:
        """Record that offsets [begin, end) of `tp` hold no record.

        Not Faust's `_add_gap`: it leaves out the committed offset itself.
        """
        gaps = self._gap[tp]
        gaps.addi(begin, end)
        gaps.merge_overlaps()

    def delivered_up_to(self, tp: TP) -> int | None:
        """The offset of the last record of `tp` the fetch loop delivered, or the offset
        it was seeked to since (None: neither, or seeked to 0)."""
        return cast(int | None, self._read_offset.get(tp))

    def committed_offsets(self) -> dict[TP, int | None]:
        """A copy of the offsets this consumer last committed, by topic partition."""
        return dict(self._committed_offset)

    async def wait_for_batches_in_hand(self) -> None:
        """The app's shutdown step "wait until every fetched event is acked"."""
        await cast(faust.App, self.app)._consumer_wait_empty(self, self.log)

    # -- Faust's private steps ---------------------------------------------------------

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if acked and not self.may_commit(tp, min(acked), self._committed_offset[tp]):
            return None
        return super()._new_offset(tp)

    async def _commit_offsets(self, offsets: Mapping[TP, int],
                              start_new_transaction: bool = True) -> bool:
        """Faust's commit, except that a commit that failed is not recorded as made.

        Faust records `offsets` as this consumer's committed offsets whatever the commit
        returned; the one failure it survives is "already rebalanced". The commit rule's
        base (`may_commit`) was then an offset the group never committed, and it stays so
        when the partition comes back with nothing committed (Faust's seek leaves the
        known offset alone where the broker has none): acknowledgements below it looked
        committable. The dashboard and the lag showed the failed commit too.
        """
        known = self._committed_offset
        before = {tp: known.get(tp) for tp in offsets}
        did_commit = await super()._commit_offsets(offsets, start_new_transaction)
        if not did_commit:
            for tp, offset in offsets.items():
                if known.get(tp) == offset:  # not moved by a seek meanwhile
                    known[tp] = before[tp]
        return did_commit

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return BrokerHighwaterThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        direct_queues = self.direct_queues
        hand_over_all = self.hand_over_all
        restores_raw = self.restores_raw
        hand_over_changelog = self.hand_over_changelog
        admit_sources = self.admit_sources
        to_message = self._to_message
        track_end_offset = self.app.monitor.track_tp_end_offset

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        acks_enabled_for = self.app.topics.acks_enabled_for

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                await self.before_fetch()
                await self.wait_for_room()
                set_flag(CONSUMER_FETCHING)
                # Faust's `getmany`, by partition: what it did per record (the generation
                # and flow checks, the highwater metric) is done per partition's records
                records, active = await self._wait_next_records(1.0)
                self.records_in_hand = bool(records)
                await self.sleep(0)
                if records is None or self.should_stop:
                    unset_flag(CONSUMER_FETCHING)
                    self.records_in_hand = False
                    continue
                if not self.flow_active:
                    await self.seek_while_flow_stopped()
                    unset_flag(CONSUMER_FETCHING)
                    self.records_in_hand = False
                    continue
                generation_id = self.app.consumer_generation_id
                others: dict[TP, list[Any]] = {}
                for tp, fetched in records.items():
                    if not self.flow_active or self.app.consumer_generation_id != generation_id:
                        break
                    if not (active is None or tp in active or tp in self._buffered_partitions):
                        continue
                    queues = direct_queues(tp.topic)
                    if not queues:
                        others[tp] = fetched
                        continue
                    track_end_offset(tp, self.highwater(tp))
                    await self.commit_if_enough_acked()
                    r_offset = get_read_offset(tp)
                    if r_offset is not None and fetched[0].offset < r_offset:
                        fetched = [record for record in fetched if record.offset >= r_offset]
                    messages = [RecordMessage(tp, record, generation_id) for record in fetched]
                    if messages and acks_enabled_for(tp.topic):
                        messages = await admit_sources(tp, messages)
                    if messages:
                        hand_over_all(queues, tp, messages)
                        set_read_offset(tp, messages[-1].offset)
                    await sleep(0)
                # Other topics record by record, round-robin between partitions (Faust's
                # scheduler), as Faust's getmany and fetch loop did.
                for tp, record in self.scheduler.iterate(others):
                    if not self.flow_active or self.app.consumer_generation_id != generation_id:
                        break
                    track_end_offset(tp, self.highwater(tp))
                    message = to_message(tp, record)
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        await self.commit_if_enough_acked()
                        if acks_enabled_for(message.topic) and not await admit_sources(
                                tp, [message]):
                            continue
                        if restores_raw(tp.topic):
                            if not await hand_over_changelog(message):
                                continue
                        else:
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                unset_flag(CONSUMER_FETCHING)
                self.records_in_hand = False
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
            self.records_in_hand = False

    async def commit_if_enough_acked(self) -> None:
        """Faust's commit after every `broker_commit_every` acknowledgements."""
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    async def seek_while_flow_stopped(self) -> None:
        """As Faust's getmany when records come while the flow is not active: seek back to
        the committed offsets (Faust's `perform_seek`), except that the committed offset
        this consumer knows is never lowered.

        A revoke stops the flow and then finishes and commits the batches in hand; a fetch
        in flight lands meanwhile. The broker's answer to this seek can predate a commit
        made in between, and Faust's `perform_seek` then set the known committed offset
        back to it: the acknowledgements after the newer one were refused (`may_commit`
        found a hole), and the graceful rebalance repeated them (a whole commit window with
        `COMMIT_INTERVAL_MS`).
        """
        try:
            offsets = await self.seek_to_committed()
        except Exception as ex:
            self.log.warning(f"exception performing seek when flow not active {ex}")
            return
        self._read_offset.update({tp: offset if offset is not None and offset >= 0 else None
                                  for tp, offset in offsets.items()})
        known = self._committed_offset
        for tp, offset in offsets.items():
            if offset is None:
                continue
            current = known.get(tp)
            if current is None or (offset or 0) > current:
                known[tp] = offset or None  # Faust's: 0 is "nothing committed"


class HookedTransport(AIOKafkaTransport):
    """Faust's aiokafka transport with an idempotent producer; subclasses name their
    `HookedConsumer` as `Consumer`."""

    Consumer = HookedConsumer
    Producer = IdempotentProducer



def put_all_nowait(queue: EventQueue, items: list[Any]) -> None:
    """`force_put_nowait(item)` for each of `items` at once (mode-streaming 0.4, copied):
    appended to the queue's deque together, its getter woken once (a Python call per
    record otherwise, a twentieth of a sink job)."""
    target = cast(Any, queue)
    target._queue.extend(items)
    target._unfinished_tasks += len(items)
    target._finished.clear()
    target._wakeup_next(target._getters)


def take_nowait(queue: EventQueue, limit: int) -> list[EventT[Any]]:
    """Up to `limit` events from `queue` at once, as that many `get_nowait` calls would.

    An error thrown into the queue is raised first (as `get_nowait` does). The queue is
    told of its drop in size once, after the take, so fetching of a partition paused for
    back-pressure resumes when it is below its low mark. Taken from the queue's deque
    directly (asyncio's `Queue._get` per item otherwise).
    """
    errors = queue._errors
    if errors:
        raise errors.popleft()
    items = cast(Any, queue)._queue
    taken = [items.popleft() for _ in range(min(limit, len(items)))]
    cast(Any, queue)._wakeup_next(cast(Any, queue)._putters)
    queue.maybe_endorse_pressure_drop()
    return taken
