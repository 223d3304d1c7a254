"""The deployment's entry point: `python worker.py worker` or `faust -A worker worker`.

Builds the Faust app from environment settings and the modules in `agents/` and `tables/`.
`python worker.py producer` serves the producer HTTP API, `python worker.py produce TOPIC`
publishes JSON lines; `python worker.py --help` lists every command.
"""

from __future__ import annotations

import sys
from pathlib import Path

from streams import Settings, SettingsError, create_app, discover_deployment
from streams.cli.commands import register_commands
from streams.errors import DeploymentError

try:
    settings = Settings.from_env()
    discover_deployment(Path(__file__).resolve().parent, settings.deployment_modules)
    app = create_app(settings)  # loads the TLS files: one that cannot be used is a bad setting
except (SettingsError, DeploymentError) as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
register_commands(settings)

if __name__ == "__main__":
    app.main()
