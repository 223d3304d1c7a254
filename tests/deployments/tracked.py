"""A test deployment whose output says exactly what was processed, where and by whom.

One batch agent reads `TRACKED_TOPIC` (values {"id", "key", "seq"}, see tests.support.harness)
and, for every record, publishes to `<TRACKED_TOPIC>.processed` under the source key::

    {"id", "seq", "partition", "offset", "worker", "generation", "owned", "at"}

`generation` is the consumer group generation of the worker; `owned` is false when, at the
end of the batch, the record's partition was no longer in this worker's assignment (work
finished after the partition was given up); `at` is the Unix time the batch was done.
The per-key table `tracked_counts` counts the records handled per key.

While the file `TRACKED_HOLD_FILE` exists, the handler holds its batch, after writing the
batch's [partition, offset] pairs to `TRACKED_BATCH_MARK` (a batch in flight during a
rebalance).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import faust

from streams import Message, PerKeyTable, batch_agent
from streams.observability.assignment import owns
from streams.testing import write_mark

TOPIC = os.environ["TRACKED_TOPIC"]
SINK = f"{TOPIC}.processed"
HOLD_FILE = Path(os.environ.get("TRACKED_HOLD_FILE", "/nonexistent/hold"))
BATCH_MARK = Path(os.environ.get("TRACKED_BATCH_MARK", "/nonexistent/mark"))


class Tracked(faust.Record, serializer="json"):
    id: int
    key: str
    seq: int


tracked_counts: PerKeyTable[int] = PerKeyTable(
    "tracked_counts", value_type=int, default=int, help="records handled per key")


@batch_agent(TOPIC, value_type=Tracked, sink=SINK,
             batch_size=int(os.environ.get("TRACKED_BATCH_SIZE", "100")))
async def track(batch: list[Message[Tracked]]) -> list[tuple[str, dict[str, object]]]:
    if HOLD_FILE.exists():
        write_mark(BATCH_MARK, batch)
        while HOLD_FILE.exists():
            await asyncio.sleep(0.05)
    with tracked_counts.batch() as counts:
        for message in batch:
            counts.set(message, message.value.key, counts.get(message.value.key) + 1)
    app = tracked_counts.faust_table.app
    worker = str(app.conf.canonical_url)
    generation = app.consumer_generation_id
    owned = {p: owns(app, TOPIC, p) for p in {m.partition for m in batch}}
    return [(m.value.key, {"id": m.value.id, "seq": m.value.seq, "partition": m.partition,
                           "offset": m.offset, "worker": worker, "generation": generation,
                           "owned": owned[m.partition], "at": round(time.time(), 3)})
            for m in batch]
