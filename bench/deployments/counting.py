"""Benchmark deployment: a batch agent counting events per key into a RocksDB table."""

from __future__ import annotations

import os

import faust

from streams import Message, PerKeyTable, batch_agent

TOPIC = os.environ["BENCH_TOPIC"]


class Event(faust.Record, serializer="json"):
    id: int
    user: str
    kind: str
    payload: str


counts: PerKeyTable[int] = PerKeyTable(f"{TOPIC}-counts", value_type=int, default=int)


@batch_agent(TOPIC, value_type=Event, batch_size=int(os.environ.get("BENCH_BATCH", "1000")))
async def count_events(batch: list[Message[Event]]) -> None:
    with counts.batch() as pending:
        for message in batch:
            pending.set(message, message.key, pending.get(message.key) + 1)
