"""Shared fixtures: a real Kafka broker for the session, unique topic and group names."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kafka_local import LocalKafka

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out `chaos` tests unless the -m expression names them (`make chaos`)."""
    if "chaos" in (config.getoption("markexpr") or ""):
        return
    chaos = [item for item in items if item.get_closest_marker("chaos")]
    if chaos:
        config.hook.pytest_deselected(items=chaos)
        items[:] = [item for item in items if not item.get_closest_marker("chaos")]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real broker: `KAFKA_BOOTSTRAP_SERVERS` if set, else our own.

    The broker is started once per session and stopped at its end; its JVM also dies with
    the test process if that is killed.
    """
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    with LocalKafka() as kafka:
        yield kafka.bootstrap_servers


@pytest.fixture
def kafka_cluster() -> Iterator[LocalKafka]:
    """A fresh 3-broker cluster (RF 3, min.insync.replicas 2) for fault tests."""
    with LocalKafka(brokers=3) as cluster:
        yield cluster


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A topic/group/app name no other test uses."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """A folder for a test's artefacts (logs, screenshots), kept after the run and emptied
    before it: worker logs are appended to (a worker restarted within a test), and a test
    reading its log must not find an earlier run's lines there."""
    path = ROOT / "test-output" / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
