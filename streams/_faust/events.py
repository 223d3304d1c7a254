"""Faust's events: the light one of a batch agent's record, the current one (table writes
read it to choose their changelog partition), and tracking and acknowledging a batch of
them."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, cast

from faust.sensors import Monitor, Sensor
from faust.streams import _current_event
from faust.types import TP, EventT
from faust.types.tuples import ConsumerMessage, ack_lock
from mode.utils.futures import notify


class RecordMessage(ConsumerMessage):
    """A fetched record of a batch agent's topic: Faust's `ConsumerMessage`, and its own
    event (`message` is itself).

    The platform reads nothing of an event but its record, and Faust's own code reads
    `message` of the current event (`event_scope`). Faust's `Event` also kept the key,
    value and a headers dict, and even a slotted event of its own per record was one
    more object that a commit window holds until it is committed, for the garbage
    collector to scan: with 10,000 keys changed per window, the collections took a tenth
    of a stateful job.

    Built from aiokafka's `ConsumerRecord` as Faust's `Consumer._to_message` builds its
    message (faust-streaming 0.15; tests/unit/test_record_messages.py compares the two),
    assigning the slots directly rather than through `Message.__init__`'s keywords.
    """

    __slots__ = ("in_hand",)

    def __init__(self, tp: TP, record: Any, generation_id: int) -> None:
        self.topic = record.topic
        self.partition = record.partition
        self.offset = record.offset
        timestamp = record.timestamp
        self.timestamp = timestamp / 1000.0 if timestamp is not None else cast(float, None)
        self.timestamp_type = record.timestamp_type
        self.headers = record.headers
        self.key = record.key
        self.value = record.value
        self.checksum = record.checksum
        self.serialized_key_size = record.serialized_key_size
        self.serialized_value_size = record.serialized_value_size
        self.acked = False
        self.refcount = 0
        self.tp = tp
        self.tracked = False  # ConsumerMessage.use_tracking
        self.time_in = self.time_out = self.time_total = None
        self.generation_id = generation_id
        self.in_hand: InHand | None = None  # see track_all

    @property
    def message(self) -> RecordMessage:
        return self


class InHand:
    """Records taken together, as one entry of Faust's set of messages in hand.

    Faust adds each message it delivers to `Consumer._unacked_messages`, a WeakSet: a
    rebalance and a shutdown wait until it is empty (`Consumer.wait_empty`), and a
    message dropped unacknowledged leaves it when it is freed. One weak reference per
    record was a third of the objects a commit window holds for the garbage collector
    to scan, and two Python calls per record. `track_all` puts one `InHand` in the set
    for the `RecordMessage`s it tracks together; each of them holds it (`in_hand`), and
    it leaves the set once each is acked (`ack_all`) or once all are freed.
    """

    __slots__ = ("pending", "__weakref__")

    def __init__(self) -> None:
        self.pending = 0  # records not acked yet

    @property
    def acked(self) -> bool:
        """Read by Faust's `Consumer._clean_unacked_messages`."""
        return not self.pending

    @property
    def refcount(self) -> int:
        """Logged by Faust's `Consumer.wait_empty` while it waits."""
        return self.pending


@contextlib.contextmanager
def event_scope(event: EventT | RecordMessage) -> Iterator[None]:
    """Make `event` Faust's current event for the duration of the block.

    This is the same context variable Faust's own stream loop sets for each event
    (`faust.streams.Stream._set_current_event`).
    """
    token = _current_event.set(weakref.ref(cast(EventT, event)))
    try:
        yield
    finally:
        _current_event.reset(token)


def incref_all(messages: Sequence[Any], shares: int) -> None:
    """`message.incref(shares)` (faust-streaming 0.15, copied) for each of `messages`, under
    one lock: Faust's takes the ack lock per record."""
    with ack_lock:
        for message in messages:
            message.refcount += shares


def track_all(consumer: Any, messages: Sequence[Any]) -> None:
    """`consumer.track_message(message)` for each of `messages` not tracked yet.

    Faust's `track_message` puts each message in the consumer's set of messages in hand
    and tells every sensor of the app of it. Here `RecordMessage`s share one entry of
    that set (`InHand`); only the sensors that listen (`on_message_in` overridden) are
    called, and Faust's own monitor is told of the records by partition, not one by one
    (`tell_monitor`).
    """
    fresh = [message for message in messages if not message.tracked]
    if not fresh:
        return
    monitors = []
    listeners = []
    for sensor in consumer.app.sensors:
        listening = type(sensor).on_message_in
        if listening is Monitor.on_message_in:
            monitors.append(sensor)
        elif listening is not Sensor.on_message_in:
            listeners.append(sensor.on_message_in)
    unacked = consumer._unacked_messages
    in_hand: InHand | None = None
    for message in fresh:
        message.tracked = True
        if type(message) is RecordMessage:
            if in_hand is None:
                in_hand = InHand()
                unacked.add(in_hand)
            in_hand.pending += 1
            message.in_hand = in_hand
        else:
            unacked.add(message)
        for on_message_in in listeners:
            on_message_in(message.tp, message.offset, message)
    for monitor in monitors:
        tell_monitor(monitor, fresh)


def tell_monitor(monitor: Monitor, messages: list[Any]) -> None:
    """Faust's `Monitor.on_message_in` (faust-streaming 0.15, copied) for `messages`, its
    counters added to once per partition.

    It also stamped each message's `time_in` for `on_message_out`, which the batch path
    does not call (acks do not go through the sensors).
    """
    received: dict[TP, tuple[int, int]] = {}
    for message in messages:
        count = received.get(message.tp, (0, 0))[0]
        received[message.tp] = (count + 1, message.offset)
    by_topic = monitor.messages_received_by_topic
    for tp, (count, last_offset) in received.items():
        monitor.messages_received_total += count
        monitor.messages_active += count
        by_topic[tp.topic] += count
        monitor.tp_read_offsets[tp] = last_offset


def ack_all(consumer: Any, events: Sequence[EventT]) -> None:
    """`event.ack()` for each of `events` (records of one consumer), under one lock.

    The chain Faust runs per event (`Event.ack` -> `Message.ack` -> `ConsumerMessage.
    on_final_ack` -> `Consumer.ack`, copied: faust-streaming 0.15) took the ack lock four
    times and woke the ack waiters once per record; here the lock is taken and the
    waiters are woken once per batch, and the offsets of each run of records of one
    partition are noted together (`note_acked`): acknowledging a commit window of
    100,000 records took 70 ms one by one, the event loop held all along.
    """
    unacked = consumer._unacked_messages
    newly_acked = 0
    run: list[Any] = []  # the records of one partition acked last, in order
    run_tp: Any = None
    with ack_lock:
        for event in events:
            message = event.message
            if message.acked:
                continue
            refcount = message.refcount - 1
            if refcount > 0:
                message.refcount = refcount
                continue  # another agent reading the topic still holds it
            message.refcount = 0
            message.acked = True
            in_hand = message.in_hand if type(message) is RecordMessage else None
            if in_hand is None:
                unacked.discard(message)  # Faust's own entry (acked: it would clean it)
            else:
                in_hand.pending -= 1
                if not in_hand.pending:
                    unacked.discard(in_hand)
            tp = message.tp
            if tp is not run_tp and tp != run_tp:  # one TP object per fetch: identity first
                newly_acked += note_acked(consumer, run_tp, run)
                run, run_tp = [], tp
            run.append(message)
        newly_acked += note_acked(consumer, run_tp, run)
        consumer._n_acked += newly_acked
        notify(consumer._waiting_for_ack)


def let_go_all(consumer: Any, events: Sequence[EventT]) -> None:
    """Take `events`, a batch left unacknowledged because its partitions are being given
    up, out of the consumer's set of messages in hand.

    Faust waits for that set to empty before it gives partitions up (a rebalance, a
    shutdown); the batch would never be acknowledged, so the wait lasted until
    `SHUTDOWN_TIMEOUT_S`. Its offsets stay unacknowledged: no commit passes them, and the
    partitions' next owner handles the records.
    """
    unacked = consumer._unacked_messages
    with ack_lock:
        for event in events:
            message = event.message
            if message.acked:
                continue
            in_hand = message.in_hand if type(message) is RecordMessage else None
            # an InHand holds records of one batch only: `track_all` is called per take
            unacked.discard(message if in_hand is None else in_hand)


def note_acked(consumer: Any, tp: Any, messages: list[Any]) -> int:
    """Note the offsets of `messages` (acked records of `tp`, in arrival order) as acked, as
    Faust's `Consumer.ack` does per record; return how many were new.

    Offsets below the committed one, or acked before, are left out. The common case, a
    run of consecutive offsets above the committed one, none acked yet, is noted in a few
    calls rather than per record.
    """
    if not messages or not consumer.app.topics.acks_enabled_for(tp.topic):
        return 0
    committed = consumer._committed_offset[tp]
    acked_index = consumer._acked_index[tp]
    acked = consumer._acked[tp]
    offsets = [message.offset for message in messages]
    first, last = offsets[0], offsets[-1]
    if ((committed is None or first >= committed)
            and last - first + 1 == len(offsets)
            and offsets == list(range(first, last + 1))
            and acked_index.isdisjoint(offsets)):
        acked_index.update(offsets)
        acked.extend(offsets)
        return len(offsets)
    newly_acked = 0
    for offset in offsets:
        if (committed is None or offset >= committed) and offset not in acked_index:
            acked_index.add(offset)
            acked.append(offset)
            newly_acked += 1
    return newly_acked
