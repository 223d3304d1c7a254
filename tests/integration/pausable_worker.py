"""`worker.py` plus two test-only views that pause and resume consumption of the sources.

    python tests/integration/pausable_worker.py worker

- `GET /test/pause`: stop fetching the agents' source partitions (Faust's
  `Consumer.pause_partitions`); the worker keeps running and serving `/metrics`.
- `GET /test/resume`: fetch them again.

A stopped worker cannot report its lag, and a second worker of the same group would take
the partitions over and consume them; pausing is how a test makes lag build up and watches
it through the worker's own `/metrics`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from faust.web import Request, Response, View  # noqa: E402

from streams import Settings, create_app, discover_deployment  # noqa: E402

settings = Settings.from_env()
discover_deployment(ROOT)
app = create_app(settings)


def source_partitions() -> set[Any]:
    """Assigned partitions of the topics the agents read (not changelogs)."""
    sources = app.topics.acking_topics
    return {tp for tp in app.consumer.assignment() if tp.topic in sources}


def _names(tps: set[Any]) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in tps)


@app.page("/test/pause")
class PauseView(View):
    async def get(self, request: Request) -> Response:
        tps = source_partitions()
        app.consumer.pause_partitions(tps)
        return self.json({"paused": _names(tps)})


@app.page("/test/resume")
class ResumeView(View):
    async def get(self, request: Request) -> Response:
        tps = source_partitions()
        app.consumer.resume_partitions(tps)
        return self.json({"resumed": _names(tps)})


if __name__ == "__main__":
    app.main()
