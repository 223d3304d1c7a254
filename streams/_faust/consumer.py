"""Faust's aiokafka consumer, with the private steps the platform changes turned into hooks.

`HookedConsumer` overrides three private methods of Faust's consumer and one of its
consumer thread:

- `_drain_messages`, Faust's fetch loop (faust-streaming 0.15, copied): every record goes
  to the conductor as `wait_first(callback(record), suspend_flow.wait())`, two tasks and an
  `asyncio.wait` per record. The copy asks `direct_queues` first and, for topics that have
  queues, puts the record there itself (`hand_over`); changelogs for which `restores_raw`
  is true go to `hand_over_changelog`; records of topics with acks enabled pass
  `admit_source` first. Faust's own gap bookkeeping is left to `admit_source`.
- `_new_offset`, Faust's next offset to commit: consults `may_commit` first.
- `_new_consumer_thread`: `BrokerHighwaterThread`, whose `_highwaters` asks the broker.

Subclasses (streams.processing.consumer) implement the hooks with public names only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP, EventT, Message
from mode import Service, ServiceT
from mode.utils.queues import ThrowableQueue


class GapInterval(Protocol):
    """Offsets [begin, end) without a record (an `intervaltree.Interval`)."""

    begin: int
    end: int


class GapTree(Protocol):
    """Faust's record of offsets that hold no record (an `intervaltree.IntervalTree`)."""

    def addi(self, begin: int, end: int) -> None: ...

    def merge_overlaps(self) -> None: ...

    def overlap(self, begin: int, end: int) -> set[GapInterval]: ...


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


class HookedConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer whose fetch loop and commit rule call public hooks.

    The defaults keep Faust's behaviour (except for gaps, noted by `admit_source`).
    """

    # -- hooks ------------------------------------------------------------------------

    def direct_queues(self, topic: str) -> list[EventQueue] | None:
        """Queues that take every record of `topic` directly (None: Faust's conductor)."""
        return None

    def hand_over(self, queues: list[EventQueue], tp: TP, message: Message) -> None:
        """Put `message` on `queues` (those `direct_queues` returned)."""
        raise NotImplementedError

    def restores_raw(self, topic: str) -> bool:
        """Whether records of `topic` go to `hand_over_changelog`."""
        return False

    async def hand_over_changelog(self, message: Message) -> None:
        """Put a changelog record on the tables' recovery queue."""
        raise NotImplementedError

    async def admit_source(self, tp: TP, message: Message) -> bool:
        """Whether a record of a topic with acks enabled may be delivered."""
        return True

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

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return BrokerHighwaterThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        direct_queues = self.direct_queues
        hand_over = self.hand_over
        restores_raw = self.restores_raw
        hand_over_changelog = self.hand_over_changelog
        admit_source = self.admit_source

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[tuple[TP, Message]], getmany(timeout=1.0))
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
                            if acks_enabled_for(message.topic) and not await admit_source(
                                    tp, message):
                                continue
                            queues = direct_queues(tp.topic)
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


class HookedTransport(AIOKafkaTransport):
    """Faust's aiokafka transport; subclasses name their `HookedConsumer` as `Consumer`."""

    Consumer = HookedConsumer

