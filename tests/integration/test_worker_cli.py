"""How the worker starts and refuses to start, as an operator sees it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.testing import WorkerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def run_worker(env: dict[str, str], timeout: float = 60) -> tuple[int, str, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "worker.py", "worker"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, **env}, timeout=timeout,
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def test_bad_setting_stops_the_worker_with_one_line_naming_it(tmp_path: Path) -> None:
    code, output, _ = run_worker({"BATCH_SIZE": "lots", "DATA_DIR": str(tmp_path)})
    assert code == 2
    assert output.strip().splitlines() == [
        "error: BATCH_SIZE='lots' is invalid: expected an integer from 1 to 100000"]


def test_unreachable_broker_exits_non_zero_within_30s_with_one_clear_line(
        tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens there
    code, output, elapsed = run_worker({
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port}", "DATA_DIR": str(tmp_path),
        "WEB_PORT": str(free_port()),
    })
    assert code != 0
    assert elapsed < 30
    errors = [line for line in output.splitlines() if "no Kafka broker answered" in line]
    assert len(errors) == 1, output
    assert f"127.0.0.1:{closed_port}" in errors[0]
    assert "Traceback" not in output


@pytest.mark.integration
def test_faust_cli_runs_the_same_app(kafka_bootstrap: str, tmp_path: Path,
                                     output_dir: Path) -> None:
    faust_cli = Path(sys.executable).with_name("faust")
    worker = WorkerProcess(ROOT, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATA_DIR": str(tmp_path),
        "APP_ID": f"faust-cli-{free_port()}",
    }, log_path=output_dir / "worker.log", command=[str(faust_cli), "-A", "worker", "worker"])
    with worker:
        ready = worker.wait_ready()
        assert {"orders[0]", "orders[1]", "orders[2]"} <= set(ready["assigned"])
        tables = worker.get_json("/api/tables")["tables"]
        assert [t["name"] for t in tables] == ["customer_totals", "orders_per_customer_minute"]
    assert worker.process is not None and worker.process.returncode == 0


@pytest.mark.integration
def test_producer_command_serves_the_produce_api(kafka_bootstrap: str, output_dir: Path,
                                                 unique_name: str) -> None:
    import asyncio
    import json
    import urllib.request

    from streams.kafka.admin import TopicSpec, ensure_topics
    from streams.testing import wait_for

    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(unique_name, 3, 1)]))
    port = free_port()
    log = open(output_dir / "producer.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "worker.py", "producer"], cwd=ROOT, stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
             "PRODUCER_PORT": str(port)})
    try:
        def healthy() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                return r.status == 200

        wait_for(healthy, 60, "the producer service to answer")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/topics/{unique_name}",
            data=json.dumps({"records": [{"key": "cli-test", "value": {"n": 1}}]}).encode(),
            headers={"Content-Type": "application/vnd.kafka.json.v2+json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            offsets = json.loads(response.read())["offsets"]
        assert len(offsets) == 1 and offsets[0]["partition"] in (0, 1, 2)
        assert offsets[0]["offset"] >= 0
    finally:
        process.terminate()
        assert process.wait(30) == 0
        log.close()


@pytest.mark.integration
def test_dlq_replay_uses_the_configured_credentials(kafka_bootstrap: str,
                                                    unique_name: str) -> None:
    """`dlq replay` connects with the SASL settings like every other client: against this
    PLAINTEXT broker the SASL handshake fails, one line, rather than replaying without them."""
    import asyncio

    from streams.kafka.admin import TopicSpec, ensure_topics

    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(unique_name, 1, 1),
                                                TopicSpec(f"{unique_name}.dlq", 1, 1)]))
    password = f"pw-{free_port()}-secret"
    result = subprocess.run(
        [sys.executable, "worker.py", "dlq", "replay", unique_name], cwd=ROOT,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
             "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "operator",
             "KAFKA_SASL_PASSWORD": password})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "replayed" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "(SASL_PLAINTEXT)" in errors[0], result.stderr
    assert "Traceback" not in result.stderr and password not in result.stderr
