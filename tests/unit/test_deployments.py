"""Finding the deployment: DEPLOYMENT_MODULES from the project folder, and `streams` as a
command that names a module that does not import in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.deployments import load_deployment
from streams.errors import DeploymentError

STREAMS = Path(sys.executable).with_name("streams")


def test_default_modules_missing_from_the_folder_are_skipped(tmp_path: Path) -> None:
    assert load_deployment(tmp_path, ("tables", "agents"), required=False) == []


def test_named_modules_and_packages_are_imported_from_the_folder(tmp_path: Path) -> None:
    package = tmp_path / "kit_deploy_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text("LOADED = True\n")
    assert load_deployment(tmp_path, ("kit_deploy_pkg",), required=True) == ["kit_deploy_pkg"]
    assert sys.modules["kit_deploy_pkg.one"].LOADED


def test_a_module_that_does_not_import_is_named(tmp_path: Path) -> None:
    (tmp_path / "kit_broken.py").write_text("import no_such_module_here\n")
    with pytest.raises(DeploymentError, match="'kit_broken' .*does not import: "
                       "ModuleNotFoundError: No module named 'no_such_module_here'"):
        load_deployment(tmp_path, ("kit_broken",), required=True)


def test_streams_command_prints_one_line_for_a_broken_module(tmp_path: Path) -> None:
    (tmp_path / "broken_agents.py").write_text("raise RuntimeError('boom')\n")
    result = subprocess.run([str(STREAMS), "worker"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "DEPLOYMENT_MODULES": "broken_agents"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: deployment module 'broken_agents' (DEPLOYMENT_MODULES (from "
        f"{tmp_path})) does not import: RuntimeError: boom"]


def test_commands_that_publish_or_scaffold_do_not_load_the_deployment(tmp_path: Path) -> None:
    result = subprocess.run([str(STREAMS), "new-agent", "kit_scaffold"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DEPLOYMENT_MODULES": "not_here"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kit-scaffold" / "pyproject.toml").exists()


def test_python_m_streams_lists_the_platform_commands(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "streams", "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("worker", "producer", "produce", "dlq", "new-agent"):
        assert f"  {command} " in result.stdout
