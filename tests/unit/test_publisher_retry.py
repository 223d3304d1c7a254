"""Retries: which errors are retried, how often, how long apart, and what the caller sees."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    NotEnoughReplicasError,
    TopicAuthorizationFailedError,
)
from prometheus_client import REGISTRY

from streams.errors import PublishError, SettingsError, UnknownTopicError
from streams.kafka.publisher import PublisherConfig
from tests.unit.publisher_fakes import HOLD, OK, FakeProducer, started


def _retries() -> float:
    return REGISTRY.get_sample_value("streams_producer_retries_total", {"topic": "t"}) or 0.0


def _errors(kind: str) -> float:
    labels = {"topic": "t", "error": kind}
    return REGISTRY.get_sample_value("streams_producer_errors_total", labels) or 0.0


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    backoff = PublisherConfig(backoff_ms=100, backoff_max_ms=1000).backoff
    low = [backoff.delay(n, rand=lambda: 0.0) for n in range(6)]
    high = [backoff.delay(n, rand=lambda: 1.0) for n in range(6)]
    assert high == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert low == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    for retry in range(5000):
        assert 0.05 <= backoff.delay(retry) <= 1.0


async def test_retriable_errors_are_retried_until_success() -> None:
    fake = FakeProducer([KafkaConnectionError(), NotEnoughReplicasError(), OK])
    publisher = await started(fake)
    before = _retries()
    delivery = await publisher.publish("t", {"a": 1}, key="k")
    assert len(fake.sent) == 3
    assert delivery.topic == "t" and delivery.offset == 0
    assert _retries() - before == 2


async def test_attempts_run_out_with_a_publish_error_naming_topic_cause_and_attempts() -> None:
    fake = FakeProducer([NotEnoughReplicasError()] * 10)
    publisher = await started(fake, max_attempts=3)
    errors_before = _errors("NotEnoughReplicasError")
    with pytest.raises(PublishError) as caught:
        await publisher.publish("t", b"x")
    error = caught.value
    assert (error.topic, error.attempts, error.retriable) == ("t", 3, True)
    assert error.error_type == "NotEnoughReplicasError"
    assert "'t'" in str(error) and "3 attempts" in str(error)
    assert len(fake.sent) == 3
    assert _errors("NotEnoughReplicasError") == errors_before + 1


@pytest.mark.parametrize("error", [MessageSizeTooLargeError(), TopicAuthorizationFailedError()])
async def test_non_retriable_errors_fail_at_once(error: Exception) -> None:
    fake = FakeProducer([error, OK])
    publisher = await started(fake)
    with pytest.raises(PublishError) as caught:
        await publisher.publish("t", b"x")
    assert caught.value.attempts == 1 and not caught.value.retriable
    assert len(fake.sent) == 1


async def test_unknown_topic_fails_at_once() -> None:
    fake = FakeProducer()
    publisher = await started(fake)
    with pytest.raises(UnknownTopicError, match="does not exist"):
        await publisher.publish("missing", b"x")
    assert fake.sent == []


async def test_a_record_in_flight_is_waited_for_not_sent_twice() -> None:
    fake = FakeProducer([HOLD])
    publisher = await started(fake, attempt_timeout_s=0.05, max_attempts=50, deadline_s=5)
    task = asyncio.create_task(publisher.publish("t", b"x"))
    retries_before = _retries()
    deadline = time.monotonic() + 5
    while _retries() < retries_before + 2:  # two attempts timed out waiting for the same record
        assert time.monotonic() < deadline, "the publisher never retried"
        await asyncio.sleep(0.01)
    fake.release()
    delivery = await task
    assert delivery.partition == 0
    assert len(fake.sent) == 1


async def test_the_deadline_bounds_the_attempts() -> None:
    fake = FakeProducer([HOLD])
    publisher = await started(fake, attempt_timeout_s=0.1, max_attempts=1000, deadline_s=0.5)
    begun = time.monotonic()
    with pytest.raises(PublishError, match="no acknowledgement") as caught:
        await publisher.publish("t", b"x")
    assert time.monotonic() - begun < 2
    assert caught.value.retriable and caught.value.attempts < 1000
    assert len(fake.sent) == 1


def test_config_errors_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="PUBLISH_MAX_ATTEMPTS='zero'"):
        PublisherConfig.from_env({"PUBLISH_MAX_ATTEMPTS": "zero"})
    with pytest.raises(SettingsError, match="PUBLISH_BACKOFF_MAX_MS"):
        PublisherConfig.from_env({"PUBLISH_BACKOFF_MS": "500", "PUBLISH_BACKOFF_MAX_MS": "100"})
    config = PublisherConfig.from_env({"TOPIC_AUTO_CREATE": "true", "PUBLISH_DEADLINE_S": "2.5"})
    assert config.auto_create_topics and config.deadline_s == 2.5


async def test_producer_is_built_with_acks_all_and_idempotence() -> None:
    fake = FakeProducer()
    await started(fake)
    assert fake.options["acks"] == "all"
    assert fake.options["enable_idempotence"] is True
