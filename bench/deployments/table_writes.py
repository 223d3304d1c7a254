"""Benchmark deployment: per-key sums of `{"amount": n}` updates in a RocksDB table.

`BENCH_TABLE_WRITES` picks how a batch reaches the table:

- `batch` (default): `PerKeyTable.batch()`, a key updated N times in a batch is written
  (and sent to the changelog) once;
- `per_record`: one table write per record, each with its record's event made current,
  the way a per-event Faust agent writes.
"""

from __future__ import annotations

import os

import faust

from streams import Message, PerKeyTable, batch_agent
from streams._faust.events import event_scope

TOPIC = os.environ["BENCH_TOPIC"]
WRITES = os.environ.get("BENCH_TABLE_WRITES", "batch")


class Update(faust.Record, serializer="json"):
    amount: int


sums: PerKeyTable[int] = PerKeyTable(os.environ.get("BENCH_TABLE", "sums"), value_type=int,
                                     default=int)


@batch_agent(TOPIC, value_type=Update, batch_size=int(os.environ.get("BENCH_BATCH", "1000")))
async def add_amounts(batch: list[Message[Update]]) -> None:
    if WRITES == "per_record":
        table = sums.faust_table
        for message in batch:
            with event_scope(message.event):
                table[message.key] = table[message.key] + message.value.amount
        return
    with sums.batch() as pending:
        for message in batch:
            pending.set(message, message.key, pending.get(message.key) + message.value.amount)
