"""The `streams` command (and `python -m streams`): the worker and the platform's tools.

`streams worker` runs a consumer worker for the deployment found in the current folder
(DEPLOYMENT_MODULES, default `tables` and `agents` when they exist there) and in installed
packages with a `streams.deployments` entry point (see streams.deployments).
`streams --help` lists every command: Faust's and the platform's own (`producer`,
`produce`, `dlq replay`, `new-agent`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from streams.app import create_app
from streams.cli.commands import register_commands
from streams.deployments import load_deployment
from streams.errors import DeploymentError, SettingsError
from streams.settings import Settings

EXIT_BAD_SETUP = 2
#: Commands that work without the deployment's agents and tables (publishing, scaffolding).
WITHOUT_DEPLOYMENT = frozenset({"producer", "produce", "dlq", "new-agent"})


def main() -> None:
    """Read the settings, load the deployment, build the app, run the command line."""
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    try:
        settings = Settings.from_env()
        if command not in WITHOUT_DEPLOYMENT:
            load_deployment(Path.cwd(), settings.deployment_modules,
                            required=bool(os.environ.get("DEPLOYMENT_MODULES", "").strip()))
        app = create_app(settings)  # refuses a DATA_DIR it cannot create
    except (SettingsError, DeploymentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_SETUP)
    register_commands(settings)
    app.main()
