"""The worker's producer builds record batches large enough for a commit window's
changelog to leave in one batch per partition (aiokafka holds one batch per partition
until its sender takes it, so many small ones wait in turn)."""

from __future__ import annotations

from streams import Settings, create_app
from streams.app import PRODUCER_BATCH_BYTES


def test_the_workers_producer_batches_up_to_half_a_mebibyte() -> None:
    app = create_app(Settings.from_env({"TABLE_STORE": "memory"}), agents=[], tables=[])
    assert PRODUCER_BATCH_BYTES == 512 * 1024
    assert app.conf.producer_max_batch_size == PRODUCER_BATCH_BYTES
    # a batch must fit in one produce request
    assert app.conf.producer_max_request_size >= PRODUCER_BATCH_BYTES
