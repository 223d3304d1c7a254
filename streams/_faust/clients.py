"""aiokafka clients: metadata refresh and the producer's sender task."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Fetch the cluster's metadata now (topics created since the consumer started)."""
    await consumer._client.force_metadata_update()


async def close_sender(producer: AIOKafkaProducer, timeout: float) -> None:
    """End the producer's sender task, which `stop()` waits on forever while an idempotent
    producer retries batches no broker answers."""
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sender.close(), timeout)
