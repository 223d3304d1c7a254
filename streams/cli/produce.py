"""`python worker.py produce TOPIC`: publish JSON lines from a file or stdin.

Each line is `{"key": .., "value": .., "headers": {..}}` (key and headers optional). Lines
are published in chunks through `Publisher.publish_many`; a line that is not such an object
is reported with its number and counted as failed, and the rest go on. A progress line is
kept on stderr, and a summary (sent, failed, msgs/s) ends the run.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from streams.errors import BrokerUnreachableError, PublishError, SettingsError
from streams.kafka.publisher import Delivery, Outgoing, Publisher, PublisherConfig
from streams.settings import Settings

__all__ = ["produce_from_lines"]

CHUNK = 1000


def _parse(line: str) -> Outgoing:
    try:
        data: Any = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError('expected an object like {"key": .., "value": ..}')
    unknown = set(data) - {"key", "value", "headers"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; allowed: key, value, headers")
    if data.get("key") is None and data.get("value") is None:
        raise ValueError("needs a key or a value")
    headers = data.get("headers")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    ):
        raise ValueError('"headers" must be an object of string values')
    return Outgoing(data.get("value"), data.get("key"), headers)


def _chunks(stream: TextIO, size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for number, line in enumerate(stream, start=1):
        if line.strip():
            chunk.append((number, line))
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


class _Progress:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self.started = time.monotonic()
        self.sent = 0
        self.failed = 0

    def rate(self) -> float:
        return self.sent / max(time.monotonic() - self.started, 1e-9)

    def line_failed(self, number: int, reason: str) -> None:
        self.failed += 1
        self._clear()
        print(f"line {number}: {reason}", file=self.out)

    def update(self) -> None:
        if self.live:
            self.out.write(f"\rsent {self.sent:,}  failed {self.failed:,}  "
                           f"{self.rate():,.0f} msgs/s")
            self.out.flush()

    def summary(self) -> None:
        self._clear()
        elapsed = time.monotonic() - self.started
        print(f"sent {self.sent:,}, failed {self.failed:,} in {elapsed:.1f}s "
              f"({self.rate():,.0f} msgs/s)", file=self.out)

    def _clear(self) -> None:
        if self.live:
            self.out.write("\r\033[K")


async def _produce(publisher: Publisher, topic: str, stream: TextIO, out: TextIO) -> int:
    progress = _Progress(out)
    for chunk in _chunks(stream, CHUNK):
        numbers, records = [], []
        for number, line in chunk:
            try:
                records.append(_parse(line))
                numbers.append(number)
            except ValueError as exc:
                progress.line_failed(number, str(exc))
        if not records:
            continue
        try:
            results = await publisher.publish_many(topic, records)
        except PublishError as exc:  # the topic itself: unknown, or no broker
            progress.summary()
            print(f"error: {exc}", file=out)
            return 1
        for number, result in zip(numbers, results, strict=True):
            if isinstance(result, Delivery):
                progress.sent += 1
            else:
                progress.line_failed(number, str(result))
        progress.update()
    progress.summary()
    return 0 if progress.failed == 0 else 1


async def _run(settings: Settings, config: PublisherConfig, topic: str, stream: TextIO,
               out: TextIO) -> int:
    publisher = Publisher(settings, config, client_id="streams-produce-cli")
    try:
        await publisher.start()
    except BrokerUnreachableError as exc:
        print(f"error: {exc}", file=out)
        return 1
    try:
        return await _produce(publisher, topic, stream, out)
    finally:
        await publisher.close()


def produce_from_lines(
    settings: Settings, topic: str, stream: TextIO, *, out: TextIO | None = None
) -> int:
    """Publish the JSON lines of `stream` to `topic`; return the exit code.

    0 when every line was published, 1 when some failed (each reported on `out`, default
    stderr, with its line number) or Kafka/the topic is unavailable, 2 for a bad setting.
    """
    out = out or sys.stderr
    try:
        config = PublisherConfig.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=out)
        return 2
    return asyncio.run(_run(settings, config, topic, stream, out))
