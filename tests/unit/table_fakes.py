"""A stand-in for Kafka where unit tests drive batch agents that write tables."""

import asyncio
from types import SimpleNamespace


class RecordingProducer:
    """Stands in for Kafka: acknowledges every changelog record at once, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes, bytes]] = []

    async def send(self, topic, key, value, partition, timestamp, headers):
        self.sent.append((topic, partition, key, value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(topic=topic, partition=partition,
                                        offset=len(self.sent) - 1))
        return done


def with_recording_producer(app) -> RecordingProducer:
    producer = RecordingProducer()

    async def maybe_start_producer() -> RecordingProducer:
        return producer

    app.maybe_start_producer = maybe_start_producer
    return producer
