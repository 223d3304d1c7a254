"""The local Kafka launcher: real brokers, clean stops, clear errors."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.testing import free_port, wait_for
from tests.support.kafka_local import LocalKafka

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def jvm_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").exists() and \
        "zombie" not in Path(f"/proc/{pid}/status").read_text()


async def broker_config(bootstrap: str, broker_id: int, names: set[str]) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, str(broker_id))])
        entries = response.resources[0][4]
        return {entry[0]: entry[1] for entry in entries if entry[0] in names}
    finally:
        await admin.close()


def test_three_broker_cluster_replicates_and_survives_a_broker_restart(
        kafka_cluster: LocalKafka, unique_name: str) -> None:
    assert len(kafka_cluster.bootstrap_servers.split(",")) == 3
    config = asyncio.run(broker_config(
        kafka_cluster.bootstrap_servers, 1,
        {"min.insync.replicas", "default.replication.factor"}))
    assert config == {"min.insync.replicas": "2", "default.replication.factor": "3"}

    async def admin_call(call):  # type: ignore[no-untyped-def]
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers)
        await admin.start()
        try:
            return await call(admin)
        finally:
            await admin.close()

    async def replica_counts(admin: AIOKafkaAdminClient) -> list[int]:
        [topic] = await admin.describe_topics([unique_name])
        return sorted(len(p["replicas"]) for p in topic["partitions"])

    asyncio.run(admin_call(lambda admin: admin.create_topics([NewTopic(unique_name, 3, 3)])))
    # a new topic reaches every broker's metadata a moment after it is created
    wait_for(lambda: asyncio.run(admin_call(replica_counts)) == [3, 3, 3], 30,
             "3 partitions with 3 replicas each")
    node = kafka_cluster._node(2)
    assert node.process is not None
    pid = node.process.pid
    kafka_cluster.stop_broker(2)
    assert not jvm_alive(pid)
    kafka_cluster.start_broker(2)
    assert kafka_cluster._node(2).process.poll() is None


def test_stop_leaves_no_jvm_behind() -> None:
    kafka = LocalKafka()
    kafka.start()
    pid = kafka._nodes[0].process.pid
    assert jvm_alive(pid)
    kafka.stop()
    assert not jvm_alive(pid)


def test_broker_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """A test run killed with SIGKILL must not leave a broker running."""
    script = (
        "import sys; from tests.support.kafka_local import LocalKafka\n"
        "k = LocalKafka(); k.start(); print(k._nodes[0].process.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert parent.stdout is not None
    jvm_pid = int(parent.stdout.readline())
    assert jvm_alive(jvm_pid)
    parent.kill()
    parent.wait()
    wait_for(lambda: not jvm_alive(jvm_pid), 30, "the broker JVM to exit after its parent")


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "STREAMS_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    result = subprocess.run([sys.executable, "-m", "tests.support.kafka_local", "start"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: java not found on PATH: the local Kafka broker needs a JDK (17 or newer). "
        "Install it, or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster."]


def test_missing_maven_is_one_clear_line(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(shutil.which("java"))
    env = {**os.environ, "PATH": str(bin_dir), "STREAMS_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    result = subprocess.run([sys.executable, "-m", "tests.support.kafka_local", "start"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: mvn not found on PATH: the local Kafka broker needs Maven to fetch the Kafka "
        "jars. Install it, or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster."]


def test_background_broker_prints_bootstrap_servers_last_and_stops(tmp_path: Path) -> None:
    env = {**os.environ, "STREAMS_STATE_DIR": str(tmp_path / "state")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    port = free_port()
    started = subprocess.run(
        [sys.executable, "-m", "tests.support.kafka_local", "start", "--port", str(port)], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().splitlines()[-1] == f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}"
    try:
        status = subprocess.run([sys.executable, "-m", "tests.support.kafka_local", "status"],
                                cwd=ROOT, env=env, capture_output=True, text=True)
        assert status.returncode == 0
    finally:
        stopped = subprocess.run([sys.executable, "-m", "tests.support.kafka_local", "stop"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert stopped.stdout.strip() == (f"local Kafka of {ROOT} stopped; its topics and data "
                                      f"({tmp_path / 'state'}) are deleted")
    status = subprocess.run([sys.executable, "-m", "tests.support.kafka_local", "status"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert status.returncode == 1
