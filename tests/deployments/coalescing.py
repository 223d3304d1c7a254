"""A test deployment: one batch agent over `TEST_TOPIC` counting records per key in a table.

Batches are cut at `TEST_BATCH_SIZE` records (the flush interval comes from the
environment), so a test that produces exactly one batch's worth controls what one batch is.
Each batch takes at least `TEST_BATCH_DELAY_S` seconds (default 0), so a test can keep the
agent busy.
"""

from __future__ import annotations

import asyncio
import os

from streams import Message, PerKeyTable, batch_agent

TOPIC = os.environ["TEST_TOPIC"]

DELAY_S = float(os.environ.get("TEST_BATCH_DELAY_S", "0"))

counts: PerKeyTable[int] = PerKeyTable("counts", value_type=int, default=int)


@batch_agent(TOPIC, batch_size=int(os.environ.get("TEST_BATCH_SIZE", "100")))
async def count_records(batch: list[Message[bytes]]) -> None:
    with counts.batch() as pending:
        for message in batch:
            pending.set(message, message.key, pending.get(message.key) + 1)
    if DELAY_S:
        await asyncio.sleep(DELAY_S)
