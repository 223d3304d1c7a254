"""A test deployment: order totals per customer from two topics written by other clients.

`TEST_JAVA_TOPIC` is written by the Java client and `TEST_KCAT_TOPIC` by kcat (librdkafka),
each with its default partitioner; each table declares its source topic, so
`KEY_PARTITIONER_TOPICS` decides how its keys are checked and its lookups routed.
"""

from __future__ import annotations

import os

import faust

from streams import Message, PerKeyTable, batch_agent

JAVA_TOPIC = os.environ["TEST_JAVA_TOPIC"]
KCAT_TOPIC = os.environ["TEST_KCAT_TOPIC"]


class Order(faust.Record, serializer="json"):
    order_id: str
    customer_id: str
    amount_cents: int


class Totals(faust.Record, serializer="json"):
    orders: int = 0
    amount_cents: int = 0


java_totals: PerKeyTable[Totals] = PerKeyTable("java_totals", value_type=Totals,
                                               default=Totals, source=JAVA_TOPIC)
kcat_totals: PerKeyTable[Totals] = PerKeyTable("kcat_totals", value_type=Totals,
                                               default=Totals, source=KCAT_TOPIC)


def _add(table: PerKeyTable[Totals], batch: list[Message[Order]]) -> None:
    with table.batch() as totals:
        for message in batch:
            totals.update(message, message.key,
                          lambda t, o=message.value: Totals(t.orders + 1,
                                                            t.amount_cents + o.amount_cents))


@batch_agent(JAVA_TOPIC, value_type=Order)
async def count_java_orders(batch: list[Message[Order]]) -> None:
    _add(java_totals, batch)


@batch_agent(KCAT_TOPIC, value_type=Order)
async def count_kcat_orders(batch: list[Message[Order]]) -> None:
    _add(kcat_totals, batch)
