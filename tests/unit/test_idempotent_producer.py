"""The worker's producer is idempotent under every processing guarantee, so a batch
retried after a partition leader failed is written once."""

from __future__ import annotations

import pytest

from streams import Settings, create_app


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_the_workers_producer_is_idempotent(
        guarantee: str) -> None:
    app = create_app(Settings.from_env({"TABLE_STORE": "memory",
                                        "PROCESSING_GUARANTEE": guarantee}),
                     agents=[], tables=[])
    assert app.conf.producer_acks == -1  # idempotence needs acks from every in-sync replica
    client = app.producer._new_producer()
    try:
        # aiokafka keeps a producer id and sequence numbers only when idempotent
        assert client._txn_manager is not None
    finally:
        await client.stop()
