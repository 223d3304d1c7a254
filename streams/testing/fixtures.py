"""pytest fixtures for testing agents against a real Kafka broker.

Enable them in a test suite's top `conftest.py`::

    pytest_plugins = ["streams.testing.fixtures"]

and give the broker with `KAFKA_BOOTSTRAP_SERVERS` (e.g. the line `make kafka` prints)::

    def test_counts_reach_the_table(kafka_bootstrap, unique_topic, streams_worker):
        topic = unique_topic("card-events")
        worker = streams_worker({"CARD_EVENTS_TOPIC": topic})
        asyncio.run(send_all(kafka_bootstrap, topic, [(b"card-1", b'{"cents": 5}')]))
        wait_for(lambda: worker.request("/api/tables/card_counts/card-1")[0] == 200,
                 60, "card-1 to be counted")

The worker runs `python -m streams worker` in the suite's root folder, so it finds the
deployment the way `streams worker` does there (DEPLOYMENT_MODULES, entry points).
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.testing.integration import WorkerProcess

__all__ = ["kafka_bootstrap", "streams_worker", "unique_topic"]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker's `host:port` list, from KAFKA_BOOTSTRAP_SERVERS."""
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not servers:
        raise pytest.UsageError("these tests need a Kafka broker: set KAFKA_BOOTSTRAP_SERVERS "
                                "(e.g. to the last line `make kafka` prints)")
    return servers


@pytest.fixture
def unique_topic(kafka_bootstrap: str, request: pytest.FixtureRequest,
                 ) -> Callable[..., str]:
    """A factory: `unique_topic("events", partitions=3)` creates a topic no other test
    uses (the prefix, the test's name and a random part) and returns its name."""
    test = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")

    def create(prefix: str = "topic", partitions: int = 3, replication: int = 1) -> str:
        name = f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"
        asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(name, partitions, replication)]))
        return name

    return create


@pytest.fixture
def streams_worker(kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest,
                   ) -> Iterator[Callable[..., WorkerProcess]]:
    """A factory: `streams_worker(env, modules=None, timeout=90)` starts a worker with its
    own app id (so its own consumer group), data folder and web port, waits until it is
    ready and returns it (a `WorkerProcess`: `.request(path)`, `.get_json(path)`,
    `.url`). Every worker it started is stopped when the test ends.

    `env` adds environment variables; `modules` sets DEPLOYMENT_MODULES.
    """
    started: list[WorkerProcess] = []
    root = Path(str(request.config.rootpath))

    def start(env: Mapping[str, str] | None = None, modules: Sequence[str] | None = None,
              timeout: float = 90.0) -> WorkerProcess:
        number = len(started)
        settings = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "APP_ID": f"test-{uuid.uuid4().hex[:12]}",
            "DATA_DIR": str(tmp_path / f"worker-{number}"),
            **({"DEPLOYMENT_MODULES": ",".join(modules)} if modules else {}),
            **(env or {}),
        }
        worker = WorkerProcess(root, settings, log_path=tmp_path / f"worker-{number}.log",
                               command=[sys.executable, "-m", "streams", "worker"])
        started.append(worker.start())
        worker.wait_ready(timeout)
        return worker

    yield start
    for worker in started:
        worker.stop()
