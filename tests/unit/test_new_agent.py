"""`streams new-agent NAME`: the generated project's unit test passes as generated."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from streams.cli.new_agent import create_agent_project


def test_the_generated_test_passes_and_fits_in_ten_lines(tmp_path: Path) -> None:
    project = create_agent_project("fraud_watch", tmp_path)
    test = project / "tests" / "test_agent.py"
    assert len([line for line in test.read_text().splitlines() if line.strip()]) <= 10
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=project, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(project)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_project_declares_its_entry_point(tmp_path: Path) -> None:
    project = create_agent_project("fraud_watch", tmp_path)
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["streams.deployments"] == {
        "fraud_watch": "fraud_watch"}


@pytest.mark.parametrize("name", ["Fraud", "fraud-watch", "1fraud", ""])
def test_a_name_that_is_not_a_package_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a package name"):
        create_agent_project(name, tmp_path)
