"""The platform's own commands beside Faust's `worker`: `producer`, `produce`,
`dlq replay`, `new-agent`.

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
        from streams.web.producer_service import run_producer_service

        sys.exit(run_producer_service(settings))

    @click.command(name="produce")
    @click.argument("topic")
    @click.argument("source", type=click.File("r"), default="-")
    def produce(topic: str, source: TextIO) -> None:
        """Publish JSON lines {"key":..,"value":..,"headers":..} from SOURCE (default stdin)."""
        from streams.cli.produce import produce_from_lines

        sys.exit(produce_from_lines(settings, topic, source))

    @click.group(name="dlq")
    def dlq() -> None:
        """Dead letters: replay them to their original topic."""

    @dlq.command(name="replay")
    @click.argument("topic")
    @click.option("--limit", type=click.IntRange(min=1), default=None,
                  help="Replay at most this many dead letters.")
    @click.option("--where", "where", default=None,
                  help="Only letters whose header matches: HEADER=VALUE, HEADER!=VALUE or "
                       "HEADER~TEXT, e.g. x-error-type=ValueError.")
    def replay(topic: str, limit: int | None, where: str | None) -> None:
        """Republish the dead letters of TOPIC (from TOPIC.dlq) to TOPIC."""
        import asyncio

        from aiokafka.errors import KafkaError

        from streams.processing.dlq_replay import ReplayBusyError, Where, replay_dead_letters

        try:
            condition = Where.parse(where) if where else None
            result = asyncio.run(replay_dead_letters(
                settings, topic, limit=limit, where=condition))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except ReplayBusyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        except KafkaError as exc:
            print(f"error: cannot replay the dead letters of {topic} from "
                  f"{settings.bootstrap_servers} ({settings.kafka_security_protocol}): "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
            sys.exit(1)
        for reason in result.rejected:
            print(f"skipped {reason}")
        print(f"replayed {result.replayed} dead letters of {topic} "
              f"({result.skipped} left in {topic}.dlq)")
        if result.restamped:
            print(f"{result.restamped} of them were sent with the replay's time, their own "
                  "being too old for the topic's retention (kept in x-original-timestamp)")
        sys.exit(0)

    @click.command(name="new-agent")
    @click.argument("name")
    def new_agent(name: str) -> None:
        """Create the project of a new agent NAME (a package name) in the current folder."""
        from pathlib import Path

        from streams.cli.new_agent import create_agent_project

        try:
            project = create_agent_project(name, Path.cwd())
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        print(f"created {project}: `pip install -e {project.name}`, then `pytest "
              f"{project.name}` and `streams worker`")
        sys.exit(0)

    for command in (producer, produce, dlq, new_agent):
        if command.name not in faust_cli.commands:
            faust_cli.add_command(command)
