"""Kafka over SASL_SSL: a broker with a TLS listener and SCRAM users, reached with the
right credentials, refused at once with one line with wrong ones."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import Publisher, PublisherConfig, Settings
from streams.kafka.admin import TopicSpec, ensure_topics
from streams.kafka.client_options import client_options
from streams.testing import WorkerProcess, free_port
from tests.support.certificates import Pem, make_certificates
from tests.support.kafka_local import LocalKafka, SecureListener

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "svc-orders", "scram-secret-7f3a"


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Pem]]:
    """A broker with a SASL_SSL listener (SCRAM-SHA-512); its servers and certificates."""
    pem = make_certificates(tmp_path_factory.mktemp("pem"))
    with LocalKafka(secure=SecureListener(pem.cert, pem.key, {USER: PASSWORD})) as kafka:
        yield kafka.secure_bootstrap_servers, pem


def secure_env(servers: str, pem: Pem, **overrides: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": servers, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SSL_CAFILE": str(pem.ca), "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": USER, "KAFKA_SASL_PASSWORD": PASSWORD, **overrides}


async def test_right_credentials_publish_and_read(secure_kafka: tuple[str, Pem],
                                                  unique_name: str) -> None:
    servers, pem = secure_kafka
    settings = Settings.from_env(secure_env(servers, pem))
    await ensure_topics(settings, [TopicSpec(unique_name, 1, 1)])
    publisher = Publisher(settings, PublisherConfig())
    await publisher.start()
    try:
        delivery = await publisher.publish(unique_name, {"n": 1}, key="k")
    finally:
        await publisher.close()
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(unique_name, 0)
        consumer.assign([tp])
        consumer.seek(tp, delivery.offset)
        batch = await consumer.getmany(tp, timeout_ms=10_000)
        assert [json.loads(record.value) for record in batch[tp]] == [{"n": 1}]
    finally:
        await consumer.stop()


def test_a_worker_runs_over_sasl_ssl(secure_kafka: tuple[str, Pem], tmp_path: Path,
                                     output_dir: Path) -> None:
    servers, pem = secure_kafka
    worker = WorkerProcess(ROOT, {**secure_env(servers, pem), "DATA_DIR": str(tmp_path),
                                  "APP_ID": f"secure-{free_port()}"},
                           log_path=output_dir / "worker.log")
    with worker:
        ready = worker.wait_ready()
        assert {"orders[0]", "orders[1]", "orders[2]"} <= set(ready["assigned"])
    assert PASSWORD not in (output_dir / "worker.log").read_text()


@pytest.mark.parametrize(("wrong", "words"), [
    ({"KAFKA_SASL_PASSWORD": "not-the-password"}, "SaslAuthenticationFailed"),
    ({"KAFKA_SSL_CAFILE": "other-ca"}, "CERTIFICATE_VERIFY_FAILED"),
])
def test_wrong_credentials_stop_the_worker_at_once_with_one_line(
        secure_kafka: tuple[str, Pem], tmp_path: Path, wrong: dict[str, str],
        words: str) -> None:
    servers, pem = secure_kafka
    if wrong.get("KAFKA_SSL_CAFILE") == "other-ca":
        wrong = {"KAFKA_SSL_CAFILE": str(make_certificates(tmp_path).ca)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "worker.py", "worker"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env={**os.environ, **secure_env(servers, pem, **wrong),
                          "DATA_DIR": str(tmp_path / "data"), "WEB_PORT": str(free_port())})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert time.monotonic() - started < 30
    errors = [line for line in output.splitlines() if "error: no Kafka broker answered" in line]
    assert len(errors) == 1 and words in errors[0], output[-3000:]
    assert "Traceback" not in output and PASSWORD not in output
    assert wrong.get("KAFKA_SASL_PASSWORD", PASSWORD) not in output


def test_the_cli_replays_dead_letters_over_sasl_ssl(secure_kafka: tuple[str, Pem],
                                                     unique_name: str) -> None:
    servers, pem = secure_kafka
    settings = Settings.from_env(secure_env(servers, pem))
    asyncio.run(ensure_topics(settings, [TopicSpec(unique_name, 1, 1),
                                         TopicSpec(f"{unique_name}.dlq", 1, 1)]))
    result = subprocess.run(
        [sys.executable, "worker.py", "dlq", "replay", unique_name], cwd=ROOT,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, **secure_env(servers, pem)})
    assert result.returncode == 0, result.stderr
    assert f"replayed 0 dead letters of {unique_name}" in result.stdout
