"""Faust's exactly-once machinery: its transaction manager, its transactional producers
and the isolation level of its consumer."""

from __future__ import annotations

from typing import Any, cast

import faust
from aiokafka import AIOKafkaProducer
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import Producer
from faust.types import AppT


def use_transaction_manager(app: AppT, manager: type[TransactionManager]) -> None:
    """Make `app`'s consumer create `manager` as its transaction manager.

    Faust's transport names the class in a `TransactionManager` attribute and no setting;
    it is set on this app's transport only.
    """
    cast(Any, app.transport).TransactionManager = manager


def transaction_producer(app: AppT, transactional_id: str) -> AIOKafkaProducer | None:
    """The started aiokafka producer Faust keeps for `transactional_id`, if any."""
    producer = cast(Producer, app.producer)
    return producer._transaction_producers.get(transactional_id)


def in_transaction(producer: AIOKafkaProducer) -> bool:
    """Whether `producer` has a transaction open."""
    return bool(producer._txn_manager.is_in_transaction())


def started_transactional_ids(app: AppT) -> list[str]:
    """The ids of `app`'s started transactional producers (never creates a producer)."""
    producer = cast(faust.App, app)._producer
    if producer is None or not app.in_transaction:
        return []
    producers = cast(Producer, producer)._transaction_producers.items()
    return sorted(tid for tid, client in producers
                  if client._txn_manager is not None
                  and client._txn_manager.transactional_id == tid)


def consumer_isolation_level(app: AppT) -> str:
    """The isolation level of `app`'s running aiokafka consumer ('' where none runs)."""
    thread = getattr(cast(faust.App, app)._consumer, "_thread", None)  # never create one
    client = getattr(thread, "_consumer", None)
    return str(getattr(client, "_isolation_level", ""))
