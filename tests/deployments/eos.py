"""A test deployment for exactly-once: a batch agent over `TEST_TOPIC` with a sink, a record
it sends itself and a per-key count table; the test steers it with files.

Items are JSON {"id": int, "fail": bool}. For every item the handler
1. adds 1 to the item's key in the table `eos_counts` (`with counts.batch()`),
2. sends {"id"} to `<TEST_TOPIC>.early` itself, before the batch is done,
3. blocks while the file `hold` exists in `TEST_STEER_DIR` (after writing the batch's
   coordinates to `mark` there): a kill then finds changelog and `.early` records in an
   open transaction,
4. raises for an item with `fail` set until the file `fixed` exists (after 1 and 2),
5. returns {"id"} records for the sink `<TEST_TOPIC>.out`.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from streams import Message, PerKeyTable, batch_agent
from streams.testing import write_mark

TOPIC = os.environ["TEST_TOPIC"]
STEER = Path(os.environ.get("TEST_STEER_DIR", "/nonexistent"))

counts = PerKeyTable("eos_counts", value_type=int, default=int)


@batch_agent(TOPIC, sink=f"{TOPIC}.out",
             batch_size=int(os.environ.get("TEST_BATCH_SIZE", "100")),
             dead_letter=os.environ.get("TEST_DEAD_LETTER", "1") == "1")
async def count_items(batch: list[Message[dict[str, Any]]]
                      ) -> list[tuple[str, dict[str, int]]]:
    items = [message.value for message in batch]  # JSON, decoded (no value_type)
    with counts.batch() as table:
        for message in batch:
            table.update(message, message.key, lambda n: n + 1)
    early = counts.faust_table.app.topic(f"{TOPIC}.early", key_type=bytes,
                                         value_type=bytes, value_serializer="raw")
    sent = [await early.send(key=message.key.encode(), value=json.dumps({"id": it["id"]}).encode())
            for message, it in zip(batch, items, strict=True)]
    await asyncio.gather(*sent)
    if (STEER / "hold").exists():
        if not (STEER / "mark").exists():
            write_mark(STEER / "mark", batch)
        while (STEER / "hold").exists():
            await asyncio.sleep(0.05)
    refused = [it["id"] for it in items if it.get("fail") and not (STEER / "fixed").exists()]
    if refused:
        raise ValueError(f"item {refused[0]} refused")
    return [(message.key, {"id": it["id"]}) for message, it in zip(batch, items, strict=True)]
