"""Acknowledging a batch's events at once (streams._faust.events.ack_all), as Faust's
per-event `Event.ack` chain would."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams import Settings, create_app
from streams._faust.events import ack_all

ORDERS_0, ORDERS_1, AUDIT = TP("orders", 0), TP("orders", 1), TP("audit", 0)


class Record:
    """What ack_all reads and writes of a Faust message (weakly referenced, as Faust's
    set of messages in hand holds them)."""

    def __init__(self, tp: TP, offset: int, refcount: int) -> None:
        self.tp, self.topic, self.offset = tp, tp.topic, offset
        self.refcount = refcount
        self.acked = False


def event(tp: TP, offset: int, refcount: int = 1) -> Any:
    return SimpleNamespace(message=Record(tp, offset, refcount))


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> Any:
    app = create_app(Settings.from_env({"TABLE_STORE": "memory"}), agents=[], tables=[])
    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: topic == "orders")
    return app.consumer


def test_a_batch_of_interleaved_partitions_is_acked_offset_by_offset(consumer: Any) -> None:
    consumer._committed_offset[ORDERS_1] = 12
    batch = [event(ORDERS_0, 5), event(ORDERS_0, 6), event(ORDERS_1, 11), event(ORDERS_1, 12),
             event(ORDERS_0, 7), event(AUDIT, 3), event(ORDERS_1, 13, refcount=2)]
    before = consumer._n_acked
    ack_all(consumer, batch)
    assert list(consumer._acked[ORDERS_0]) == [5, 6, 7]
    assert list(consumer._acked[ORDERS_1]) == [12], "11 is below the committed offset"
    assert not consumer._acked[AUDIT], "a topic without acks is not tracked"
    assert consumer._n_acked - before == 4
    held = batch[-1].message
    assert (held.acked, held.refcount) == (False, 1), "another agent still holds it"
    ack_all(consumer, [batch[-1], batch[0]])
    assert list(consumer._acked[ORDERS_1]) == [12, 13]
    assert list(consumer._acked[ORDERS_0]) == [5, 6, 7], "acked once"


def test_runs_of_one_partition_are_noted_whole_or_offset_by_offset_alike(consumer: Any) -> None:
    consumer._committed_offset[ORDERS_0] = 100
    consumer._committed_offset[ORDERS_1] = 100
    ack_all(consumer, [event(ORDERS_1, 130)])  # acked before
    consecutive = [event(ORDERS_0, offset) for offset in range(100, 1100)]
    with_holes = [event(ORDERS_1, offset) for offset in (99, 120, 121, 130, 131, 131, 140)]
    before = consumer._n_acked

    ack_all(consumer, consecutive + with_holes)

    assert list(consumer._acked[ORDERS_0]) == list(range(100, 1100))
    assert list(consumer._acked[ORDERS_1]) == [130, 120, 121, 131, 140]
    assert consumer._acked_index[ORDERS_1] == {120, 121, 130, 131, 140}
    assert consumer._n_acked - before == 1000 + 4
    assert all(e.message.acked for e in consecutive + with_holes)
