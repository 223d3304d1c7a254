"""Demo orders for `make run`: keyed by customer, so the customer_totals table fills up."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from typing import Any

from streams.kafka.publisher import Outgoing, Publisher
from streams.settings import Settings

CUSTOMERS = [f"customer-{n:03d}" for n in range(50)]


def demo_order(rng: random.Random) -> tuple[str, dict[str, Any]]:
    customer = rng.choice(CUSTOMERS)
    return customer, {"order_id": uuid.uuid4().hex, "customer_id": customer,
                      "amount_cents": rng.randint(100, 50_000)}


async def feed_orders(settings: Settings, *, burst: int = 1_000, per_second: float = 20,
                      stop: asyncio.Event | None = None) -> int:
    """Publish `burst` orders at once, then `per_second` until `stop` is set; return the count."""
    rng = random.Random()
    sent = 0
    async with Publisher(settings, client_id="streams-demo") as publisher:
        orders = [demo_order(rng) for _ in range(burst)]
        await publisher.publish_many("orders", [Outgoing(value=v, key=k) for k, v in orders])
        sent += burst
        stop = stop or asyncio.Event()
        while not stop.is_set():
            key, value = demo_order(rng)
            await publisher.publish("orders", value, key=key)
            sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / per_second)
    return sent
