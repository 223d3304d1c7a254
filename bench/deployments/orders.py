"""Benchmark deployment for the peer comparison: orders, selected by `BENCH_JOB`.

- `p1`: per customer, count and sum of `amount` in a RocksDB `PerKeyTable` (typed model
  values, changelog on);
- `p7`: a stateless map of each order to one sink record (`BENCH_SINK`);
- `echo`: each record published unchanged to `BENCH_SINK` (latency runs, batch settings
  from the environment);
- `latest`: per key, the highest `n` of `{"n": ...}` records in a RocksDB `PerKeyTable`
  (table latency runs, bench.table_latency; batch settings from the environment).

The progress mark (bench.marks) is written once the agent acknowledged the last expected
record, its table changes and sink records committed with it.

`BENCH_MODEL` picks the models: `msgspec` (default: msgspec.Struct orders, table values and
p7 output) or `faust` (faust.Record orders and table values, dict p7 output).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import faust
import msgspec
from prometheus_client import REGISTRY

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

def write_when_acknowledged(agent: str) -> None:
    """Write the progress mark once the agent has acknowledged every expected record: its
    table changes are in the changelog and the store, its sink records acknowledged (as
    Quix's mark is written after its final checkpoint). The last batches' commit is
    part of the time measured, however long COMMIT_INTERVAL_MS holds it back."""

    async def wait_and_write() -> None:
        labels = {"agent": agent, "topic": TOPIC}
        while (REGISTRY.get_sample_value("streams_consumer_messages_total", labels)
               or 0) < progress.expect:
            await asyncio.sleep(0.005)
        progress.write()

    _marking.append(asyncio.ensure_future(wait_and_write()))


_marking: list[asyncio.Future[None]] = []  # keeps the task referenced


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
            write_when_acknowledged(count_and_sum.name)

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
            write_when_acknowledged(project.name)
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
