"""The tutorial (docs/tutorial.md) run as a reader would: its agent in a worker on the real
broker, its payments published with `streams produce`, and the table answer it shows."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from streams.cli.new_agent import create_agent_project
from streams.testing import WorkerProcess
from tests.integration.test_batch_agents import read_all
from tests.support.tutorial import blocks, write_files

pytestmark = pytest.mark.integration
STREAMS = Path(sys.executable).with_name("streams")


def test_the_tutorials_worker_answers_what_the_tutorial_shows(
        kafka_bootstrap: str, tmp_path: Path, output_dir: Path) -> None:
    project = create_agent_project("card_fraud", tmp_path)
    write_files(tmp_path)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DEPLOYMENT_MODULES": "card_fraud",
           "APP_ID": f"tutorial-{uuid.uuid4().hex[:8]}", "DATA_DIR": str(tmp_path / "data"),
           "RETRY_BACKOFF_MS": "10"}
    worker = WorkerProcess(project, env, log_path=output_dir / "worker.log",
                           command=[sys.executable, "-m", "streams", "worker"])
    with worker:
        worker.wait_ready()
        produced = subprocess.run([str(STREAMS), "produce", "payments", "payments.jsonl"],
                                  cwd=tmp_path, capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
        assert produced.returncode == 0, produced.stderr
        worker.wait_caught_up()
        for path, answer in blocks("answer").items():
            assert worker.get_json(path) == json.loads(answer), path
        letters = asyncio.run(read_all(kafka_bootstrap, "payments.dlq"))
        assert [(letter.key, dict(letter.headers)["x-error-type"]) for letter in letters] == [
            (b"card-2", b"ValueError")]
        alerts = asyncio.run(read_all(kafka_bootstrap, "payment-alerts"))
        assert [json.loads(alert.value) for alert in alerts] == [
            {"card": "card-1", "reason": "over the limit", "total_cents": 110000}]
