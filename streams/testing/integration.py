"""Integration helpers: run a real worker as a process, talk to its web API, fill topics.

Used by the platform's own integration tests and by the pytest fixtures of
`streams.testing.fixtures`::

    with WorkerProcess(root, {"KAFKA_BOOTSTRAP_SERVERS": servers}) as worker:
        worker.wait_ready()
        worker.get_json("/api/tables/customer_totals/c1")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams._faust.clients import refresh_metadata
from streams.kafka.client_options import client_options
from streams.kafka.partitioner import key_partition

T = TypeVar("T")


def write_mark(path: Path, batch: Iterable[Any]) -> None:
    """Write a batch's [partition, offset] pairs to `path` for a test to read.

    Written to a temporary file and renamed, so a test polling for `path` never reads it
    half-written.
    """
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps([[m.partition, m.offset] for m in batch]))
    temporary.rename(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T | None], timeout: float, what: str,
              interval: float = 0.2,
              retry_on: tuple[type[BaseException], ...] = (OSError, ValueError)) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds.

    Exceptions of the `retry_on` types (connection refused, a half-written response) mean
    "not yet"; any other exception ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except retry_on as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}"
                       + (f" (last error: {last_error!r})" if last_error else ""))


class WorkerExitedError(RuntimeError):
    """The worker process ended while it was expected to run."""


class WorkerProcess:
    """`python worker.py worker` in a child process, with its own web port and data dir."""

    def __init__(self, root: Path, env: Mapping[str, str], log_path: Path | None = None,
                 command: Sequence[str] | None = None) -> None:
        self.root = root
        self.command = list(command or [sys.executable, str(root / "worker.py"), "worker"])
        self.port = int(env.get("WEB_PORT") or free_port())
        self.env = {**os.environ, "WEB_PORT": str(self.port), **env}
        #: Sent as `Authorization: Bearer` with every request when the worker has one.
        self.token = env.get("API_TOKEN")
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [*self.command, "-l", "info"],
            cwd=self.root, env=self.env, stdout=output, stderr=subprocess.STDOUT,
        )
        if self.log_path:
            output.close()  # type: ignore[union-attr]
        return self

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until `/ready` says 200; fail early if the process died."""

        def ready() -> dict[str, Any] | None:
            if self.process is not None and self.process.poll() is not None:
                raise WorkerExitedError(f"worker exited with {self.process.returncode}"
                                   + (f"; see {self.log_path}" if self.log_path else ""))
            status, body = self.request("/ready")
            return body if status == 200 else None

        return wait_for(ready, timeout, f"worker on port {self.port} to be ready")

    def wait_caught_up(self, after: float | None = None, timeout: float = 90.0,
                       ) -> list[dict[str, Any]]:
        """Wait until `GET /api/agents` says every agent caught up (its group committed
        everything up to the end offsets), from offsets read after `after` (epoch seconds,
        default now: call it once the records to wait for were published). Returns the
        agents' entries."""
        since = time.time() if after is None else after

        def caught_up() -> dict[str, Any] | None:
            status, body = self.request("/api/agents")
            agents = body["agents"] if status == 200 else []
            fresh = all(agent["caught_up"] and (agent["updated_at_epoch"] or 0) > since
                        for agent in agents)
            return body if status == 200 and fresh else None

        return list(wait_for(caught_up, timeout, f"the agents of worker on port {self.port} "
                             "to catch up")["agents"])

    def request(self, path: str) -> tuple[int, Any]:
        """GET `path`; return (status, parsed JSON body)."""
        try:
            with urllib.request.urlopen(self._get(path), timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def ready_assignment(self) -> set[str] | None:
        """The partitions (`topic[p]`) this worker owns when `/ready` says ready, else None.

        One request: asking `/ready` twice races with a rebalance starting in between.
        """
        status, body = self.request("/ready")
        return set(body["assigned"]) if status == 200 else None

    def request_text(self, path: str) -> str:
        """GET `path` as text (e.g. `/metrics`); fail on a non-200 answer."""
        with urllib.request.urlopen(self._get(path), timeout=10) as response:
            return str(response.read().decode())

    def _get(self, path: str) -> urllib.request.Request:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return urllib.request.Request(self.url + path, headers=headers)

    def get_json(self, path: str) -> Any:
        status, body = self.request(path)
        if status != 200:
            raise AssertionError(f"GET {path} answered {status}: {body}")
        return body

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a graceful shutdown), SIGKILL if it does not end within `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def produce_orders(bootstrap_servers: str, prefix: str, count: int = 10_000,
                         customers: int = 1_000, topic: str = "orders",
                         ) -> dict[str, dict[str, int]]:
    """Publish `count` keyed orders over `customers` customers named `<prefix>-c<n>`.

    Returns the per-customer totals a correct pipeline must reach.
    """
    rng = random.Random(7)
    expected: dict[str, dict[str, int]] = {}
    producer = AIOKafkaProducer(**client_options(bootstrap_servers), acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i in range(count):
            customer = f"{prefix}-c{i % customers}"
            amount = rng.randint(1, 100_000)
            totals = expected.setdefault(customer, {"orders": 0, "amount_cents": 0})
            totals["orders"] += 1
            totals["amount_cents"] += amount
            value = {"order_id": f"{prefix}-{i}", "customer_id": customer,
                     "amount_cents": amount}
            futures.append(await producer.send(
                topic, key=customer.encode(), value=json.dumps(value).encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return expected


async def committed_lag(bootstrap_servers: str, group_id: str, topic: str) -> int:
    """Messages of `topic` not yet committed by `group_id` (log end minus committed)."""

    consumer = AIOKafkaConsumer(**client_options(bootstrap_servers), group_id=group_id,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await refresh_metadata(consumer)
            partitions = [TopicPartition(topic, p)
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = await consumer.end_offsets(partitions)
        lag = 0
        for tp in partitions:
            lag += ends[tp] - (await consumer.committed(tp) or 0)
        return lag
    finally:
        await consumer.stop()


def table_matches(worker: WorkerProcess, table: str,
                  expected: Mapping[str, Any]) -> bool:
    """Whether the worker's view of `table` has exactly the `expected` values."""
    for key, value in expected.items():
        status, body = worker.request(f"/api/tables/{table}/{key}")
        if status != 200 or body["value"] != value:
            return False
    return True


async def commit_offsets(bootstrap_servers: str, group_id: str,
                         offsets: Mapping[Any, int]) -> None:
    """Commit `offsets` ({TopicPartition: offset}) for `group_id`, as a stopped member would."""

    consumer = AIOKafkaConsumer(**client_options(bootstrap_servers), group_id=group_id,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(dict(offsets))
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def assigned_consumer(bootstrap_servers: str, topic: str, **options: Any
                            ) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A started group-less consumer assigned every partition of `topic`, and those.

    It starts from the earliest offsets unless `options` say otherwise: with aiokafka's
    default (latest), the reset the assignment requests can land after a
    `seek_to_beginning` and leave the position at the end, so a read from the start
    returned nothing now and then.
    """
    options.setdefault("auto_offset_reset", "earliest")
    consumer = AIOKafkaConsumer(**client_options(bootstrap_servers), enable_auto_commit=False,
                                **options)
    await consumer.start()
    try:
        await refresh_metadata(consumer)
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        yield consumer, partitions
    finally:
        await consumer.stop()


async def send_all(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes | None]],
                   partitions: int = 3) -> None:
    """Publish `records` in record batches, each on its key's (murmur2) partition.

    Much faster than one `send` per record (tests and benchmarks fill topics with it).
    """
    by_partition: defaultdict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
    for key, value in records:
        by_partition[key_partition(key, partitions)].append((key, value))
    producer = AIOKafkaProducer(**client_options(bootstrap), acks=1,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            for key, value in items:
                while batch.append(key=key, value=value, timestamp=None) is None:
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
            pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic`."""
    async with assigned_consumer(bootstrap, topic) as (consumer, tps):
        ends = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}
