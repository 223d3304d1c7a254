"""The orders pipeline: orders keyed by customer id -> per-customer totals."""

from __future__ import annotations

import faust

from streams import Message, batch_agent
from tables.customers import customer_totals


class Order(faust.Record, serializer="json"):
    """An order as producers publish it to the `orders` topic, keyed by customer id."""

    order_id: str
    customer_id: str
    amount_cents: int


@batch_agent("orders", value_type=Order)
async def count_orders(batch: list[Message[Order]]) -> None:
    """Add each order to its customer's totals (one table write per customer and batch)."""
    with customer_totals.batch() as totals:
        for message in batch:
            order = message.value
            totals.update(message, order.customer_id, lambda t, o=order: t.add(o.amount_cents))
