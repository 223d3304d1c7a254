"""The aiokafka producers behind Faust's producer, for sending record batches directly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import Producer

from streams._faust.transactions import in_transaction, transaction_producer


class IdempotentProducer(Producer):
    """Faust's aiokafka producer, idempotent under every processing guarantee, and
    beginning transactions only where none is open.

    Faust enables idempotence only under exactly-once. Without it, a batch whose
    acknowledgement was lost when its partition leader failed is retried and written
    twice: a broker killed under a worker repeated a sink batch of 100 records. With it
    (the Java client's default since Kafka 3.0) the broker drops the retried copy. The
    worker's producer already waits for acks from all in-sync replicas.
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}

    async def maybe_begin_transaction(self, transactional_id: str) -> None:
        """Begin a transaction on `transactional_id`'s producer unless one is open, as
        the name says (Faust's begins one regardless).

        Faust calls it for every partition assigned at a rebalance, so for a partition
        the worker kept, whose producer still had the transaction Faust began at the
        last assignment, it logged "Exception in begin_transaction ... Invalid state
        transition" and went on. Batch parts use an open transaction as they find it.
        """
        client = self._transaction_producers.get(transactional_id)
        if client is not None and in_transaction(client):
            return
        await self.begin_transaction(transactional_id)


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
