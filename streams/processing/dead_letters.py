"""Dead letters: records that cannot be processed go to `<topic>.dlq`, with the reason.

The original key, value and headers are kept; these headers are added (SPEC.md):
`x-error-type`, `x-error-message`, `x-original-topic`, `x-original-partition`,
`x-original-offset`, `x-attempts`, `x-failed-at`, and `x-original-timestamp` (epoch ms) so
a replay can give the record its own time back. The letter itself is stamped with the
time of failure: the original may be a time the broker would refuse. A record that already
carries `x-original-timestamp` (a replay sent it with the replay's time because its own was
past the topic's retention) keeps that value: it is still the record's own time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

DLQ_SUFFIX = ".dlq"
ERROR_MESSAGE_LIMIT = 2000


def dead_letter_topic_name(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


def dead_letter_headers(
    original_headers: Any, topic: str, partition: int, offset: int, error: BaseException,
    attempts: int, failed_at: datetime | None = None, timestamp_ms: int | None = None,
) -> list[tuple[str, bytes]]:
    """The dead letter's headers: the original ones, then the error description."""
    pairs = [(str(k), bytes(v or b"")) for k, v in _pairs(original_headers)]
    earlier = [v for k, v in pairs if k == "x-original-timestamp" and v.isdigit()]
    headers = [(k, v) for k, v in pairs
               if not k.startswith("x-error-") and not k.startswith("x-original-")]
    when = (failed_at or datetime.now(UTC)).isoformat()
    headers += [
        ("x-error-type", type(error).__name__.encode()),
        ("x-error-message", str(error)[:ERROR_MESSAGE_LIMIT].encode()),
        ("x-original-topic", topic.encode()),
        ("x-original-partition", str(partition).encode()),
        ("x-original-offset", str(offset).encode()),
        ("x-attempts", str(attempts).encode()),
        ("x-failed-at", when.encode()),
    ]
    if earlier:
        headers.append(("x-original-timestamp", earlier[-1]))
    elif timestamp_ms is not None:
        headers.append(("x-original-timestamp", str(timestamp_ms).encode()))
    return headers


def _timestamp_ms(seconds: Any) -> int | None:
    """Faust's record timestamp (seconds) as Kafka's epoch ms, or None if it has none."""
    try:
        return round(float(seconds) * 1000)
    except (TypeError, ValueError, OverflowError):
        return None


def _pairs(headers: Any) -> list[tuple[str, Any]]:
    if not headers:
        return []
    return list(headers.items()) if hasattr(headers, "items") else list(headers)


class DeadLetterSink:
    """Sends failed records to a dead-letter topic and waits for the broker's ack."""

    def __init__(self, topic: Any) -> None:
        self.topic = topic

    async def send(self, event: Any, error: BaseException, attempts: int) -> None:
        """Dead-letter the record of `event`; returns once the broker has it."""
        record = event.message
        log.error("dead-lettered %s[%d]@%d after %d attempt(s): %s: %s",
                  record.topic, record.partition, record.offset, attempts,
                  type(error).__name__, error,
                  extra={"topic": record.topic, "partition": record.partition,
                         "offset": record.offset})
        pending = await self.topic.send(
            key=record.key, value=record.value,
            headers=dead_letter_headers(record.headers, record.topic, record.partition,
                                        record.offset, error, attempts,
                                        timestamp_ms=_timestamp_ms(record.timestamp)),
        )
        await pending
