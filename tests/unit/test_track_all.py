"""Tracking a batch's events as in hand (streams._faust.events.track_all)."""

from __future__ import annotations

import weakref
from types import SimpleNamespace
from typing import Any

from faust.sensors import Sensor
from faust.types import TP

from streams._faust.events import track_all


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
