"""`RecordMessage` is the message Faust's fetch loop builds for a record, and its own event.

It assigns Faust's `Message` slots itself: if Faust adds, renames or computes a slot
differently, the comparison below fails and names it.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers.aiokafka import Consumer as FaustAIOKafkaConsumer
from faust.types import TP
from faust.types.tuples import ConsumerMessage, Message

from streams._faust.events import RecordMessage

MISSING = object()


def slots_of(message: Message) -> dict[str, object]:
    return {name: getattr(message, name, MISSING) for name in Message.__slots__
            if name != "__weakref__"}


@pytest.mark.parametrize("timestamp", [1_700_000_000_123, None])
@pytest.mark.parametrize("headers", [(), (("trace", b"1"),)])
def test_a_record_message_equals_fausts_message_of_the_record(timestamp, headers) -> None:
    tp = TP("orders", 2)
    record = ConsumerRecord("orders", 2, 41, timestamp, 0, b"k", b'{"n": 1}', 99, 1, 8,
                            headers)
    consumer = SimpleNamespace(app=SimpleNamespace(consumer_generation_id=7))
    fausts = FaustAIOKafkaConsumer._to_message(consumer, tp, record)  # type: ignore[arg-type]

    ours = RecordMessage(tp, record, 7)

    assert type(fausts) is ConsumerMessage and isinstance(ours, ConsumerMessage)
    assert slots_of(ours) == slots_of(fausts)
    assert ours.message is ours
