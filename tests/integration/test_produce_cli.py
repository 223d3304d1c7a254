"""The produce CLI against a real broker: JSON lines in, records out, bad lines reported."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from streams.cli.produce import produce_from_lines
from streams.settings import Settings
from tests.integration.test_publisher import create_topic, read_all

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def test_lines_are_published_and_bad_lines_reported(
    kafka_bootstrap: str, unique_name: str
) -> None:
    await create_topic(kafka_bootstrap, unique_name, partitions=3)
    lines = [json.dumps({"key": f"k{n}", "value": {"n": n}, "headers": {"h": "v"}})
             for n in range(2500)]
    lines.insert(10, "{broken")
    lines.insert(20, "")
    lines.insert(30, '["not", "an", "object"]')
    out = io.StringIO()
    code = await asyncio.to_thread(
        produce_from_lines, Settings(bootstrap_servers=kafka_bootstrap), unique_name,
        io.StringIO("\n".join(lines) + "\n"), out=out)
    report = out.getvalue()
    assert code == 1
    assert "line 11: not JSON" in report
    assert "line 31: expected an object" in report
    assert "sent 2,500, failed 2 in" in report and "msgs/s" in report
    stored = await read_all(kafka_bootstrap, unique_name)
    assert sorted(json.loads(v)["n"] for *_, v in stored) == list(range(2500))


async def test_unknown_topic_is_one_clear_error(kafka_bootstrap: str, unique_name: str) -> None:
    out = io.StringIO()
    code = await asyncio.to_thread(
        produce_from_lines, Settings(bootstrap_servers=kafka_bootstrap), unique_name,
        io.StringIO('{"value": 1}\n'), out=out)
    assert code == 1 and "does not exist" in out.getvalue()


def test_runs_as_a_program_reading_stdin(kafka_bootstrap: str, unique_name: str) -> None:
    asyncio.run(create_topic(kafka_bootstrap, unique_name, partitions=1))
    program = ("import sys; from streams.cli.produce import produce_from_lines; "
               "from streams.settings import Settings; "
               f"sys.exit(produce_from_lines(Settings.from_env(), {unique_name!r}, sys.stdin))")
    result = subprocess.run(
        [sys.executable, "-c", program], input='{"key": "a", "value": "x"}\n' * 5,
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PYTHONPATH": str(ROOT),
             "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "sent 5, failed 0" in result.stderr
