"""The aiokafka producers behind Faust's producer, for sending record batches directly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import Producer

from streams._faust.transactions import transaction_producer


class IdempotentProducer(Producer):
    """Faust's aiokafka producer, idempotent under every processing guarantee.

    Faust enables idempotence only under exactly-once. Without it, a batch whose
    acknowledgement was lost when its partition leader failed is retried and written
    twice: a broker killed under a worker repeated a sink batch of 100 records. With it
    (the Java client's default since Kafka 3.0) the broker drops the retried copy. The
    worker's producer already waits for acks from all in-sync replicas.
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


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
