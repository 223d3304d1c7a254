"""Benchmark deployment for the peer comparison: orders, selected by `BENCH_JOB`.

- `p1`: per customer, count and sum of `amount` in a RocksDB `PerKeyTable` (typed model
  values, changelog on);
- `p7`: a stateless map of each order to one sink record (`BENCH_SINK`);
- `echo`: each record published unchanged to `BENCH_SINK` (latency runs, batch settings
  from the environment);
- `latest`: per key, the highest `n` of `{"n": ...}` records in a RocksDB `PerKeyTable`
  (table latency runs, bench.table_latency; batch settings from the environment).

`BENCH_MODEL` picks the models: `msgspec` (default: msgspec.Struct orders, table values and
p7 output) or `faust` (faust.Record orders and table values, dict p7 output).
"""

from __future__ import annotations

import os
from typing import Any

import faust
import msgspec

from bench.marks import Progress
from streams import Message, PerKeyTable, batch_agent

TOPIC = os.environ["BENCH_TOPIC"]
JOB = os.environ.get("BENCH_JOB", "p1")
SINK = os.environ.get("BENCH_SINK")
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
progress = Progress()


class OrderRecord(faust.Record, serializer="json"):
    order_id: int
    customer: str
    amount: int
    currency: str
    items: int
    note: str


class TotalsRecord(faust.Record, serializer="json"):
    count: int = 0
    sum: int = 0


class OrderStruct(msgspec.Struct):
    order_id: int
    customer: str
    amount: int
    currency: str
    items: int
    note: str


class Projection(msgspec.Struct):
    order_id: int
    amount: int


class TotalsStruct(msgspec.Struct):
    count: int = 0
    sum: int = 0


FAST = os.environ.get("BENCH_MODEL", "msgspec") == "msgspec"
Order: Any = OrderStruct if FAST else OrderRecord
Totals: Any = TotalsStruct if FAST else TotalsRecord

if JOB == "p1":
    totals: PerKeyTable[Any] = PerKeyTable(f"{TOPIC}-totals", value_type=Totals, default=Totals)

    @batch_agent(TOPIC, value_type=Order, batch_size=BATCH)
    async def count_and_sum(batch: list[Message[Any]]) -> None:
        with totals.batch() as pending:
            for message in batch:
                current = pending.get(message.key)
                pending.set(message, message.key,
                            Totals(count=current.count + 1,
                                   sum=current.sum + message.value.amount))
        if progress.handled(len(batch)):
            progress.write()

elif JOB == "p7":
    @batch_agent(TOPIC, value_type=Order, batch_size=BATCH, sink=SINK)
    async def project(batch: list[Message[Any]]) -> list[tuple[str, Any]]:
        if FAST:
            out: list[tuple[str, Any]] = [
                (m.key, Projection(m.value.order_id, m.value.amount)) for m in batch]
        else:
            out = [(m.key, {"order_id": m.value.order_id, "amount": m.value.amount})
                   for m in batch]
        if progress.handled(len(batch)):
            progress.write()
        return out

elif JOB == "latest":
    latest: PerKeyTable[int] = PerKeyTable(f"{TOPIC}-latest", value_type=int, default=int)

    @batch_agent(TOPIC, value_type=dict)
    async def keep_latest(batch: list[Message[Any]]) -> None:
        with latest.batch() as pending:
            for message in batch:
                pending.set(message, message.key,
                            max(pending.get(message.key), message.value["n"]))

else:
    @batch_agent(TOPIC, value_type=dict, sink=SINK)
    async def echo(batch: list[Message[Any]]) -> list[tuple[str, Any]]:
        return [(m.key, m.raw_value) for m in batch]
