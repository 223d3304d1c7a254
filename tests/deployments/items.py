"""A test deployment: one batch agent over `TEST_TOPIC` whose behaviour the test steers.

- Items with `fail=True` make the handler raise until the file `TEST_FIXED_FILE` exists.
- While the file `TEST_HOLD_FILE` exists, the handler blocks, after writing the batch's
  coordinates to `TEST_BATCH_MARK` (kill/shutdown tests).
- While the file `TEST_DOWN_FILE` exists ("database down"), the handler raises
  `RetryableError`.
- Every handled item is published to `<TEST_TOPIC>.out` as {"id", "partition", "offset"}.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import faust

from streams import Message, RetryableError, batch_agent
from streams.testing import write_mark

TOPIC = os.environ["TEST_TOPIC"]
FIXED_FILE = Path(os.environ.get("TEST_FIXED_FILE", "/nonexistent/fixed"))
HOLD_FILE = Path(os.environ.get("TEST_HOLD_FILE", "/nonexistent/hold"))
DOWN_FILE = Path(os.environ.get("TEST_DOWN_FILE", "/nonexistent/down"))
BATCH_MARK = Path(os.environ.get("TEST_BATCH_MARK", "/nonexistent/mark"))


class Item(faust.Record, serializer="json"):
    id: int
    fail: bool = False


@batch_agent(TOPIC, value_type=Item, sink=f"{TOPIC}.out",
             batch_size=int(os.environ.get("TEST_BATCH_SIZE", "100")),
             dead_letter=os.environ.get("TEST_DEAD_LETTER", "1") == "1")
async def handle_items(batch: list[Message[Item]]) -> list[tuple[str, dict[str, int]]]:
    if HOLD_FILE.exists():
        if not BATCH_MARK.exists():
            write_mark(BATCH_MARK, batch)
        while HOLD_FILE.exists():
            await asyncio.sleep(0.05)
    if DOWN_FILE.exists():
        raise RetryableError("database down")
    for message in batch:
        if message.value.fail and not FIXED_FILE.exists():
            raise ValueError(f"item {message.value.id} refused")
    return [(str(m.value.id), {"id": m.value.id, "partition": m.partition,
                               "offset": m.offset}) for m in batch]
