"""publish_soon: a bounded number of outstanding records, flush, and a close that reports."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from streams.errors import BrokerUnreachableError
from streams.kafka.publisher import Publisher
from streams.settings import Settings
from tests.unit.publisher_fakes import HOLD, OK, FakeProducer, fast_config, started


async def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_publish_soon_waits_while_the_queue_is_full() -> None:
    fake = FakeProducer([HOLD, HOLD, OK])
    publisher = await started(fake, queue_size=2, attempt_timeout_s=5)
    await publisher.publish_soon("t", b"1")
    await publisher.publish_soon("t", b"2")
    third = asyncio.create_task(publisher.publish_soon("t", b"3"))
    await _wait_until(lambda: len(fake.held) == 2)
    await asyncio.sleep(0.05)
    assert not third.done(), "a third record was accepted beyond PUBLISH_QUEUE_SIZE=2"
    fake.release()
    await asyncio.wait_for(third, 5)
    fake.release()
    assert await publisher.flush(5) == []
    assert len(fake.sent) == 3


async def test_flush_reports_records_given_up_on() -> None:
    fake = FakeProducer([OK, MessageSizeTooLargeError(), OK])
    publisher = await started(fake)
    for value in (b"a", b"b", b"c"):
        await publisher.publish_soon("t", value)
    failures = await publisher.flush(5)
    assert [f.error_type for f in failures] == ["MessageSizeTooLargeError"]
    assert await publisher.flush(5) == []


async def test_close_is_bounded_and_reports_what_was_not_acknowledged() -> None:
    fake = FakeProducer([HOLD])
    publisher = await started(fake, attempt_timeout_s=10, deadline_s=60)
    await publisher.publish_soon("t", b"stuck")
    begun = time.monotonic()
    failures = await publisher.close(timeout=0.3)
    assert time.monotonic() - begun < 3
    assert len(failures) == 1 and "closed before" in str(failures[0])


async def test_start_fails_clearly_and_quickly_when_no_broker_answers() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        settings = Settings(bootstrap_servers=f"127.0.0.1:{port}", broker_connect_timeout_s=3)
        publisher = Publisher(settings, fast_config())
        begun = time.monotonic()
        with pytest.raises(BrokerUnreachableError) as caught:
            await publisher.start()
        assert time.monotonic() - begun < 10
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "KAFKA_BOOTSTRAP_SERVERS" in str(caught.value)
