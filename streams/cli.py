"""The platform's own commands beside Faust's `worker`: `producer`, `produce`.

They are added to Faust's command group, so `python worker.py --help` and
`faust -A worker --help` list them with Faust's commands.
"""

from __future__ import annotations

import sys
from typing import TextIO

import click
from faust.cli.base import cli as faust_cli

from streams.settings import Settings


def register_commands(settings: Settings) -> None:
    """Add the platform commands to Faust's CLI (idempotent)."""

    @click.command(name="producer")
    def producer() -> None:
        """Serve the producer HTTP API (PRODUCER_HOST:PRODUCER_PORT, default :8888)."""
        from streams.producer_service import run_producer_service

        sys.exit(run_producer_service(settings))

    @click.command(name="produce")
    @click.argument("topic")
    @click.argument("source", type=click.File("r"), default="-")
    def produce(topic: str, source: TextIO) -> None:
        """Publish JSON lines {"key":..,"value":..,"headers":..} from SOURCE (default stdin)."""
        from streams.produce_cli import produce_from_lines

        sys.exit(produce_from_lines(settings, topic, source))

    for command in (producer, produce):
        if command.name not in faust_cli.commands:
            faust_cli.add_command(command)
