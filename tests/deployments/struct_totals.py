"""A test deployment: per key, count and sum of `amount` in a table of msgspec Structs."""

from __future__ import annotations

import os

import msgspec

from streams import Message, PerKeyTable, batch_agent


class Payment(msgspec.Struct):
    amount: int


class Totals(msgspec.Struct):
    count: int = 0
    sum: int = 0


totals: PerKeyTable[Totals] = PerKeyTable("totals", value_type=Totals, default=Totals)


@batch_agent(os.environ["TEST_TOPIC"], value_type=Payment)
async def add_payments(batch: list[Message[Payment]]) -> None:
    with totals.batch() as pending:
        for message in batch:
            current = pending.get(message.key)
            pending.set(message, message.key,
                        Totals(current.count + 1, current.sum + message.value.amount))
