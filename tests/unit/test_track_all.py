"""Tracking a batch's events as in hand (streams._faust.events.track_all)."""

from __future__ import annotations

import weakref
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.sensors import Monitor, Sensor
from faust.types import TP

from streams import Settings, create_app
from streams._faust.events import RecordMessage, ack_all, let_go_all, track_all


class Record:
    """What track_all reads and writes of a Faust message."""

    def __init__(self, offset: int, tracked: bool = False) -> None:
        self.tp = TP("orders", 0)
        self.offset = offset
        self.tracked = tracked


class Listening(Sensor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[TP, int]] = []

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        self.seen.append((tp, offset))


class Silent(Sensor):
    """A sensor that does not listen for records: walking it per record was the cost."""


def consumer_with(*sensors: Sensor) -> Any:
    return SimpleNamespace(app=SimpleNamespace(sensors=list(sensors)),
                           _unacked_messages=weakref.WeakSet())


def test_each_untracked_message_is_in_hand_and_told_to_the_listening_sensors() -> None:
    listening = Listening()
    consumer = consumer_with(Silent(), listening)
    done = Record(1, tracked=True)
    batch = [done, Record(2), Record(3)]
    track_all(consumer, batch)
    assert all(message.tracked for message in batch)
    assert set(consumer._unacked_messages) == {batch[1], batch[2]}
    assert listening.seen == [(TP("orders", 0), 2), (TP("orders", 0), 3)]


def test_a_message_tracked_twice_is_counted_once() -> None:
    listening = Listening()
    consumer = consumer_with(listening)
    message = Record(7)
    track_all(consumer, [message])
    track_all(consumer, [message])
    assert listening.seen == [(TP("orders", 0), 7)]


def record_messages(tp: TP, offsets: range) -> list[RecordMessage]:
    return [RecordMessage(tp, ConsumerRecord(tp.topic, tp.partition, offset, 1_700_000_000_000,
                                             0, b"k", b"v", None, 1, 1, ()), 1)
            for offset in offsets]


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A worker app's Faust consumer, every topic acked."""
    app = create_app(Settings.from_env({"TABLE_STORE": "memory"}), agents=[], tables=[])
    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: True)
    return app.consumer


def test_records_taken_together_share_one_entry_in_hand_until_each_is_acked(
        consumer: Any) -> None:
    tp = TP("orders", 0)
    first, second = record_messages(tp, range(0, 3)), record_messages(tp, range(3, 5))
    track_all(consumer, first)
    track_all(consumer, second + first)  # the first ones again: tracked once
    assert len(consumer._unacked_messages) == 2
    assert [message.in_hand.pending for message in (first[0], second[0])] == [3, 2]

    ack_all(consumer, first[:2] + second)
    assert len(consumer._unacked_messages) == 1, "one of the first records is not acked"
    assert list(consumer._acked[tp]) == [0, 1, 3, 4]
    ack_all(consumer, first[2:])
    assert not consumer._unacked_messages  # what a rebalance and a shutdown wait for


def test_records_dropped_unacknowledged_leave_nothing_in_hand() -> None:
    consumer = consumer_with()
    batch = record_messages(TP("orders", 0), range(10))
    track_all(consumer, batch)
    assert len(consumer._unacked_messages) == 1
    del batch  # a batch given up at a rebalance: its next owner handles it
    assert not consumer._unacked_messages


def test_an_abandoned_batch_leaves_the_set_in_hand_unacknowledged(consumer: Any) -> None:
    """Still referenced (the agent holds it until its next batch), it would keep a
    rebalance waiting for acknowledgements that never come."""
    tp = TP("orders", 0)
    handled, abandoned = record_messages(tp, range(0, 3)), record_messages(tp, range(3, 6))
    track_all(consumer, handled)
    track_all(consumer, abandoned)
    let_go_all(consumer, abandoned)
    assert len(consumer._unacked_messages) == 1  # the handled batch's
    assert not consumer._acked[tp]  # no commit passes the abandoned records
    ack_all(consumer, handled)
    assert not consumer._unacked_messages
    assert list(consumer._acked[tp]) == [0, 1, 2]


def test_fausts_monitor_counts_the_records_as_one_call_per_record_would() -> None:
    tps = [TP("orders", 0), TP("orders", 1), TP("audit", 0)]
    batch = [message for tp in tps for message in record_messages(tp, range(5, 9))]
    one_by_one = Monitor()
    for message in batch:
        one_by_one.on_message_in(message.tp, message.offset, message)
    monitor = Monitor()
    track_all(consumer_with(monitor), batch)
    assert (monitor.messages_received_total, monitor.messages_active) == (12, 12)
    for name in ("messages_received_total", "messages_active",
                 "messages_received_by_topic", "tp_read_offsets"):
        assert getattr(monitor, name) == getattr(one_by_one, name), name
