"""Operational edges on real processes: DATA_DIR, a deployment module that does not import,
and SIGTERM when the brokers are gone."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.testing import WorkerProcess, wait_for
from tests.support.kafka_local import LocalKafka

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "worker.py"), "worker"], cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                          text=True, timeout=120)


async def topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_a_data_dir_that_cannot_be_created_is_one_line(kafka_bootstrap: str,
                                                       tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = run_worker({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                       "DATA_DIR": str(blocker / "data")})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: DATA_DIR='{blocker / 'data'}' cannot be created")


def test_a_missing_data_dir_is_created(kafka_bootstrap: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "there"
    with WorkerProcess(ROOT, {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                              "APP_ID": f"edges-{uuid.uuid4().hex[:8]}",
                              "DATA_DIR": str(data_dir)}) as worker:
        worker.wait_ready(timeout=120)
    assert data_dir.is_dir()


def test_a_module_that_fails_to_import_is_named_before_anything_is_created(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"edges-{uuid.uuid4().hex[:8]}"
    (tmp_path / "half_written.py").write_text(
        "from streams import batch_agent\n\n"
        f"@batch_agent({topic!r})\n"
        "async def handle(batch):\n"
        "    pass\n\n"
        "import a_module_nobody_installed  # noqa\n")
    done = run_worker({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                       "DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(tmp_path),
                       "DEPLOYMENT_MODULES": "tables,half_written"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: deployment module 'half_written' (DEPLOYMENT_MODULES")
    assert lines[0].endswith("does not import: ModuleNotFoundError: No module named "
                             "'a_module_nobody_installed'")
    assert topic not in asyncio.run(topic_names(kafka_bootstrap))


@pytest.fixture
def own_broker() -> Iterator[LocalKafka]:
    """A broker of this test's own, to take away under the worker."""
    with LocalKafka() as kafka:
        yield kafka


def test_vanished_topics_are_logged_once_a_while_and_sigterm_still_ends_the_worker(
        own_broker: LocalKafka, tmp_path: Path, output_dir: Path) -> None:
    shutdown_timeout = 5.0
    log = output_dir / "worker.log"
    worker = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap_servers,
        "APP_ID": f"edges-{uuid.uuid4().hex[:8]}", "DATA_DIR": str(tmp_path / "data"),
        "SHUTDOWN_TIMEOUT_S": str(shutdown_timeout)}, log_path=log)
    worker.start()
    try:
        worker.wait_ready(timeout=120)
        before = len(log.read_text().splitlines())
        gone = asyncio.run(delete_all_topics(own_broker.bootstrap_servers))
        assert "orders" in gone
        # aiokafka reports each missing topic on every metadata refresh (~every 3 s here)
        wait_for(lambda: "Topic orders not found" in log.read_text(), 60,
                 "the worker to notice")
        time.sleep(15)  # the window under test: ~5 metadata refreshes, one line per topic
        lines = log.read_text().splitlines()[before:]
        missing = [line for line in lines if "not found in cluster metadata" in line]
        per_topic = Counter(line.split("Topic ")[1].split(" ")[0] for line in missing)
        assert per_topic and max(per_topic.values()) == 1, per_topic
        assert worker.request("/health")[0] == 200

        own_broker.kill_broker(1)
        # Not a wait for a condition: SIGTERM must end the worker within its bound whether or
        # not it has noticed yet; 2 s makes the usual case (fetches already failing) the one
        # tested.
        time.sleep(2)
        assert worker.process is not None
        started = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        worker.process.wait(timeout=shutdown_timeout + 30)
        took = time.monotonic() - started
    finally:
        worker.stop()
    assert took < shutdown_timeout + 15, f"SIGTERM took {took:.1f}s"
    print(f"\nSIGTERM with the topics and the broker gone: ended in {took:.1f}s "
          f"(exit status {worker.process.returncode})")


async def delete_all_topics(bootstrap: str) -> list[str]:
    """What replacing the brokers under a running worker looks like to it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if not t.startswith("__")]
        await admin.delete_topics(names)
        return names
    finally:
        await admin.close()
