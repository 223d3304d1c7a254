"""A stand-in for Kafka where unit tests drive batch agents that write tables."""

import asyncio
from types import SimpleNamespace


class RecordingBatch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []

    def append(self, *, key, value, timestamp, headers):
        if not isinstance(headers, list):  # as aiokafka's (Cython) batch builder
            raise TypeError("Argument 'headers' has incorrect type")
        self.records.append((key, value))
        return object()


class RecordingProducer:
    """Stands in for Kafka: acknowledges every changelog record at once, in order.

    It takes records one by one (`send`) and as record batches (`create_batch` and
    `send_batch`, as aiokafka's producer does).
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes, bytes]] = []

    def _ensure_producer(self) -> "RecordingProducer":  # Faust's producer -> aiokafka's
        return self

    async def send(self, topic, key, value, partition, timestamp, headers):
        self.sent.append((topic, partition, key, value))
        return self._acknowledged(topic, partition, len(self.sent) - 1)

    def create_batch(self) -> RecordingBatch:
        return RecordingBatch()

    async def send_batch(self, batch, topic, *, partition):
        base = len(self.sent)
        self.sent.extend((topic, partition, key, value) for key, value in batch.records)
        return self._acknowledged(topic, partition, base)

    @staticmethod
    def _acknowledged(topic, partition, offset):
        done = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(topic=topic, partition=partition, offset=offset))
        return done


def with_recording_producer(app) -> RecordingProducer:
    producer = RecordingProducer()

    async def maybe_start_producer() -> RecordingProducer:
        return producer

    app.maybe_start_producer = maybe_start_producer
    return producer
