"""A test deployment: one batch agent over `TEST_TOPIC` counting records per key in a table.

Batches are cut at `TEST_BATCH_SIZE` records (the flush interval comes from the
environment), so a test that produces exactly one batch's worth controls what one batch is.
"""

from __future__ import annotations

import os

from streams import Message, PerKeyTable, batch_agent

TOPIC = os.environ["TEST_TOPIC"]

counts: PerKeyTable[int] = PerKeyTable("counts", value_type=int, default=int)


@batch_agent(TOPIC, batch_size=int(os.environ.get("TEST_BATCH_SIZE", "100")))
async def count_records(batch: list[Message[bytes]]) -> None:
    with counts.batch() as pending:
        for message in batch:
            pending.set(message, message.key, pending.get(message.key) + 1)
