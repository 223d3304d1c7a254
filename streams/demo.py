"""Demo orders for `make run`: keyed by customer, so the customer_totals table fills up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid

from aiokafka import AIOKafkaProducer

CUSTOMERS = [f"customer-{n:03d}" for n in range(50)]


def demo_order(rng: random.Random) -> tuple[bytes, bytes]:
    customer = rng.choice(CUSTOMERS)
    order = {"order_id": uuid.uuid4().hex, "customer_id": customer,
             "amount_cents": rng.randint(100, 50_000)}
    return customer.encode(), json.dumps(order).encode()


async def feed_orders(bootstrap_servers: str, *, burst: int = 1_000, per_second: float = 20,
                      stop: asyncio.Event | None = None) -> int:
    """Publish `burst` orders at once, then `per_second` until `stop` is set; return the count."""
    rng = random.Random()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all",
                                enable_idempotence=True)
    await producer.start()
    sent = 0
    try:
        for _ in range(burst):
            key, value = demo_order(rng)
            await producer.send("orders", key=key, value=value)
            sent += 1
        await producer.flush()
        stop = stop or asyncio.Event()
        while not stop.is_set():
            key, value = demo_order(rng)
            await producer.send_and_wait("orders", key=key, value=value)
            sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / per_second)
    finally:
        await producer.stop()
    return sent
