"""The pytest fixtures of streams.testing.fixtures, used the way a team's suite uses them:
a folder of its own with a conftest.py enabling them, its agent module, and a test that
starts a worker, publishes to a unique topic and waits for the table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

AGENTS = '''
import os

from streams import Message, PerKeyTable, batch_agent

seen = PerKeyTable("seen", value_type=int, default=int)


@batch_agent(os.environ["SEEN_TOPIC"], value_type=dict)
async def count(batch: list[Message[dict]]) -> None:
    with seen.batch() as table:
        for message in batch:
            table.update(message, message.key, lambda n: n + 1)
'''

TEST = '''
import asyncio

from streams.testing import send_all


def test_the_worker_counts_what_is_published(kafka_bootstrap, unique_topic, streams_worker):
    topic = unique_topic("seen")
    worker = streams_worker({"SEEN_TOPIC": topic}, modules=["team_agents"])
    asyncio.run(send_all(kafka_bootstrap, topic, [(b"k1", b"{}")] * 4))
    worker.wait_caught_up()
    assert worker.get_json("/api/tables/seen/k1")["value"] == 4
'''


def test_a_team_suite_gets_a_broker_topics_and_a_worker(kafka_bootstrap: str,
                                                        tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["streams.testing.fixtures"]\n')
    (tmp_path / "team_agents.py").write_text(AGENTS)
    (tmp_path / "test_team.py").write_text(TEST)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_without_a_broker_the_suite_says_what_to_set(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["streams.testing.fixtures"]\n')
    (tmp_path / "test_team.py").write_text("def test_x(kafka_bootstrap):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode != 0
    assert "set KAFKA_BOOTSTRAP_SERVERS" in result.stdout + result.stderr
