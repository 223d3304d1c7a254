"""Finding a deployment's agents and tables: modules named by DEPLOYMENT_MODULES, and
installed packages that declare an entry point in the group `streams.deployments`.

A team ships its agents as a package whose `pyproject.toml` says::

    [project.entry-points."streams.deployments"]
    team_x = "team_x_agents"

and `pip install team-x-agents` is all a worker needs: `streams worker` imports
`team_x_agents` (a package has all its modules imported), whose `@batch_agent` and table
declarations register themselves.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from streams.errors import DeploymentError

ENTRY_POINT_GROUP = "streams.deployments"

__all__ = ["ENTRY_POINT_GROUP", "import_deployment", "load_deployment"]


def load_deployment(root: Path, modules: Sequence[str], *, required: bool) -> list[str]:
    """Import `modules` from the folder `root`, then every installed entry point of the
    group `streams.deployments`; return the names imported, in that order.

    `required=False` skips a module of `modules` that is not a file or folder in `root`
    (the default `tables`, `agents` of a project that has none). Raises `DeploymentError`
    naming the first module that does not import.
    """
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    imported = []
    for name in modules:
        top = name.split(".")[0]
        if not required and not ((root / top).is_dir() or (root / f"{top}.py").is_file()):
            continue
        import_deployment(name, f"DEPLOYMENT_MODULES (from {root})")
        imported.append(name)
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        package = point.dist.name if point.dist is not None else "an installed package"
        import_deployment(point.module, f"entry point {point.name!r} of {package}")
        imported.append(point.module)
    return imported


def import_deployment(name: str, origin: str) -> ModuleType:
    """Import module `name`, and every module of it if it is a package."""
    try:
        module = importlib.import_module(name)
        for sub in pkgutil.iter_modules(getattr(module, "__path__", [])):
            importlib.import_module(f"{name}.{sub.name}")
    except Exception as exc:  # any import failure becomes one line naming the module
        raise DeploymentError(f"deployment module {name!r} ({origin}) does not import: "
                              f"{type(exc).__name__}: {exc}") from exc
    return module
