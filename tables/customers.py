"""Per-customer order totals, fed by the orders agent and served at /api/tables/."""

from __future__ import annotations

import faust

from streams import PerKeyTable


class CustomerTotals(faust.Record, serializer="json"):
    """How many orders a customer placed and what they added up to (in cents)."""

    orders: int = 0
    amount_cents: int = 0

    def add(self, amount_cents: int) -> CustomerTotals:
        return CustomerTotals(orders=self.orders + 1,
                              amount_cents=self.amount_cents + amount_cents)


customer_totals: PerKeyTable[CustomerTotals] = PerKeyTable(
    "customer_totals",
    value_type=CustomerTotals,
    default=CustomerTotals,
    help="orders and amount per customer",
)
