"""The docs build without warnings, and the tutorial's unit tests pass as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from streams.cli.new_agent import create_agent_project
from tests.support.tutorial import blocks, write_files

ROOT = Path(__file__).resolve().parents[2]


def test_the_tutorials_agent_passes_its_tests_without_a_broker(tmp_path: Path) -> None:
    assert {"card-fraud/card_fraud/agent.py", "card-fraud/tests/test_agent.py",
            "payments.jsonl"} <= set(blocks("file"))
    project = create_agent_project("card_fraud", tmp_path)
    write_files(tmp_path)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=project, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(project)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_the_docs_build_strictly_with_generated_references(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    result = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir",
                             str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    settings = (tmp_path / "site" / "reference" / "settings" / "index.html").read_text()
    assert "KAFKA_BOOTSTRAP_SERVERS" in settings and "PUBLISH_MAX_ATTEMPTS" in settings
    http = (tmp_path / "site" / "reference" / "http" / "index.html").read_text()
    assert "/api/agents" in http and "/topics/{topic}" in http


def test_the_readme_example_and_its_test_run(tmp_path: Path) -> None:
    code = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert len(code) == 2
    script = tmp_path / "readme_example.py"
    script.write_text("\n".join([*code, "test_alerts_over_the_limit()", "print('passed')"]))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "passed"
