"""A test deployment: two batch agents, one of which can be held stuck.

- `held` reads `TEST_HELD_TOPIC` and, while the file `TEST_GATE` exists, does not return
  from its handler (an agent stuck on a slow dependency);
- `seen` reads `TEST_FREE_TOPIC` and counts records per key in the table `seen`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from streams import Message, PerKeyTable, batch_agent

GATE = Path(os.environ["TEST_GATE"])

seen: PerKeyTable[int] = PerKeyTable("seen", value_type=int, default=int)


@batch_agent(os.environ["TEST_HELD_TOPIC"], value_type=bytes)
async def held(batch: list[Message[bytes]]) -> None:
    while GATE.exists():
        await asyncio.sleep(0.05)


@batch_agent(os.environ["TEST_FREE_TOPIC"], value_type=bytes)
async def count_seen(batch: list[Message[bytes]]) -> None:
    with seen.batch() as pending:
        for message in batch:
            pending.set(message, message.key, pending.get(message.key) + 1)
