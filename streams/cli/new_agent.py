"""`streams new-agent NAME`: a project for a team's agent, ready to test, install and run.

The project is a package with an agent, a table, a unit test on the test kit and a
`pyproject.toml` declaring the `streams.deployments` entry point, so after
`pip install ./NAME` a `streams worker` runs the agent.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

__all__ = ["create_agent_project"]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")

#: template file -> path in the project ({package} is the package name)
_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "package_init.py.tmpl": "{package}/__init__.py",
    "agent.py.tmpl": "{package}/agent.py",
    "test_agent.py.tmpl": "tests/test_agent.py",
}


def create_agent_project(name: str, parent: Path) -> Path:
    """Write the project `parent/NAME` and return its folder.

    `name` is a Python package name (lower case letters, digits, `_`); topics and the
    table are named after it. Raises `ValueError` for a bad name or an existing folder.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a package name: use lower case letters, digits "
                         "and '_', starting with a letter")
    project = parent / name.replace("_", "-")
    if project.exists():
        raise ValueError(f"{project} already exists")
    templates = files("streams.cli") / "templates"
    values = {"package": name, "project": name.replace("_", "-"),
              "topic": name.replace("_", "-")}
    for template, target in _FILES.items():
        path = project / target.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (templates / template).read_text()
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path.write_text(text)
    return project
