"""A test deployment: per-key count and sum of `{"amount": n}` updates on `TEST_TOPIC`.

The table `counts` (RocksDB, changelog `<APP_ID>-counts-changelog`) holds, for each key,
how many updates it got and the sum of their amounts. Updates of a batch are coalesced
(`PerKeyTable.batch()`), so a key updated several times in one batch is written once.
"""

from __future__ import annotations

import os

import faust

from streams import Message, PerKeyTable, batch_agent

TOPIC = os.environ["TEST_TOPIC"]


class Update(faust.Record, serializer="json"):
    amount: int


class Totals(faust.Record, serializer="json"):
    count: int = 0
    sum: int = 0


counts: PerKeyTable[Totals] = PerKeyTable("counts", value_type=Totals, default=Totals,
                                          help="updates and their sum per key")


@batch_agent(TOPIC, value_type=Update,
             batch_size=int(os.environ.get("TEST_BATCH_SIZE", "1000")))
async def count_updates(batch: list[Message[Update]]) -> None:
    with counts.batch() as totals:
        for message in batch:
            totals.update(message, message.key,
                          lambda t, a=message.value.amount: Totals(t.count + 1, t.sum + a))
