"""The orders pipeline: orders keyed by customer id -> per-customer totals and per-minute
order counts."""

from __future__ import annotations

import faust

from streams import Message, batch_agent
from tables.customers import customer_totals
from tables.order_windows import orders_per_customer_minute


class Order(faust.Record, serializer="json"):
    """An order as producers publish it to the `orders` topic, keyed by customer id."""

    order_id: str
    customer_id: str
    amount_cents: int


@batch_agent("orders", value_type=Order)
async def count_orders(batch: list[Message[Order]]) -> None:
    """Add each order to its customer's totals and to the minute it was placed in (one
    table write per customer, or customer and minute, and batch)."""
    with customer_totals.batch() as totals, orders_per_customer_minute.batch() as minutes:
        for message in batch:
            order = message.value
            totals.update(message, order.customer_id, lambda t, o=order: t.add(o.amount_cents))
            minutes.update(message, order.customer_id, lambda count: count + 1)
