"""Orders per customer and minute (by the order record's timestamp), kept for an hour."""

from __future__ import annotations

from datetime import timedelta

from streams import Tumbling, WindowedTable

orders_per_customer_minute: WindowedTable[int] = WindowedTable(
    "orders_per_customer_minute",
    value_type=int,
    default=int,
    window=Tumbling(60),
    expires=timedelta(hours=1),
    help="orders per customer per minute",
)
