"""MkDocs hook: the reference pages' tables, generated from the code at build time.

A page holds a marker comment; the build replaces it:

- `<!-- reference:settings -->`: every variable of `Settings` and `PublisherConfig`, with
  its default and meaning, from the settings classes themselves;
- `<!-- reference:http-worker -->`, `<!-- reference:http-producer -->`: the routes of the
  worker's and the producer service's web apps, as the apps register them, each with the
  first line of its handler's docstring (or of its module's route list).
"""

from __future__ import annotations

import asyncio
import inspect
import re
from dataclasses import fields
from typing import Any

MARKER = re.compile(r"<!-- reference:([a-z-]+) -->")


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda match: GENERATORS[match.group(1)](), markdown)


def settings_table() -> str:
    from streams.kafka.publisher import PublisherConfig
    from streams.settings import Settings

    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for cls in (Settings, PublisherConfig):
        for spec in fields(cls):
            default = spec.default
            shown = "(none)" if default is None else (
                ",".join(default) if isinstance(default, tuple) else str(default))
            rows.append(f"| `{spec.metadata['env']}` | `{shown}` | {spec.metadata['doc']} |")
    return "\n".join(rows)


def _summary(method: str, path: str, handler: Any) -> str:
    """The line of the module's route list naming this route, else the handler's
    docstring's first line."""
    module = inspect.getmodule(handler)
    lines = (inspect.getdoc(module) or "").splitlines()
    for number, line in enumerate(lines):
        words = line.split(maxsplit=2)
        if len(words) == 3 and words[0] == method and words[1].split("?")[0] == path:
            column = line.index(words[2], len(words[0]) + len(words[1]))
            text = [words[2].strip()]
            for more in lines[number + 1:]:  # continuation lines start at the same column
                if len(more) - len(more.lstrip()) < column or not more.strip():
                    break
                text.append(more.strip())
            return " ".join(text)
    doc = inspect.getdoc(handler) or ""
    return doc.splitlines()[0] if doc else ""


def _routes_table(router: Any, views: dict[str, Any] | None = None) -> str:
    """`views`: Faust's views by path (their aiohttp handlers are Faust's dispatchers)."""
    rows = ["| Method | Path | What it does |", "| --- | --- | --- |"]
    seen = set()
    for route in router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or path == "/static" or (route.method, path) in seen:
            continue
        seen.add((route.method, path))
        handler = type(views[path]) if views and path in views else route.handler
        summary = _summary(route.method, path, handler).replace("|", "\\|")
        rows.append(f"| {route.method} | `{path}` | {summary} |")
    return "\n".join(rows)


def worker_routes() -> str:
    from streams import Settings, create_app

    app = create_app(Settings.from_env({"TABLE_STORE": "memory"}), agents=[], tables=[])
    return _routes_table(app.web.web_app.router, dict(app.web.views))


def producer_routes() -> str:
    from streams import Publisher, PublisherConfig, Settings
    from streams.web.producer_service import create_producer_web_app

    async def build() -> str:
        publisher = Publisher(Settings.from_env({}), PublisherConfig())
        return _routes_table(create_producer_web_app(publisher).router)

    return asyncio.run(build())


GENERATORS = {
    "settings": settings_table,
    "http-worker": worker_routes,
    "http-producer": producer_routes,
}
