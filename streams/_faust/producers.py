"""The aiokafka producers behind Faust's producer, for sending record batches directly."""

from __future__ import annotations

from typing import Any

from streams._faust.transactions import transaction_producer


async def aiokafka_producer(app: Any, transactional_id: str | None = None) -> Any:
    """The started `AIOKafkaProducer` Faust sends with: the transactional producer of
    `transactional_id` (exactly-once), else Faust's default producer.

    Faust's `Producer.send` takes one record at a time; its aiokafka producer also takes
    whole record batches (`create_batch`/`send_batch`).
    """
    if transactional_id is None:
        return (await app.maybe_start_producer())._ensure_producer()
    client = transaction_producer(app, transactional_id)
    if client is None:
        raise LookupError(f"no transactional producer {transactional_id} (its partition was "
                          "revoked, or a newer owner fenced it)")
    return client
