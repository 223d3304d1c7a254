"""MkDocs hook: the reference pages' tables, generated from the code at build time.

A page holds a marker comment; the build replaces it:

- `<!-- reference:settings -->`: every variable of `Settings` and `PublisherConfig`, with
  its default and meaning, from the settings classes themselves;
- `<!-- reference:http-worker -->`, `<!-- reference:http-producer -->`: the routes of the
  worker's and the producer service's OpenAPI descriptions (`GET /openapi.json`); a route
  an app registers that its description lacks fails the build.
"""

from __future__ import annotations

import asyncio
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


def _registered(router: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app registers, less HEAD and static files."""
    routes = set()
    for route in router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method != "HEAD" and path != "/static":
            routes.add((route.method.lower(), path))
    return routes


def _openapi_table(document: dict[str, Any], registered: set[tuple[str, str]]) -> str:
    """The routes of an OpenAPI description; fails the build if the app serves a route the
    description lacks (the fuzz test generates its requests from the description)."""
    documented = {(method, path) for path, operations in document["paths"].items()
                  for method in operations}
    missing = sorted(registered - documented)
    if missing:
        raise RuntimeError(f"{document['info']['title']}: routes missing from its OpenAPI "
                           f"description (streams/web/openapi.py): {missing}")
    rows = ["| Method | Path | What it does | Query parameters | Token |",
            "| --- | --- | --- | --- | --- |"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            query = ", ".join(f"`{p['name']}`" for p in operation.get("parameters", [])
                              if p["in"] == "query")
            token = "required" if operation.get("security") else "with `API_TOKEN_READS=1`"
            if path in ("/health", "/ready") or path.startswith("/static"):
                token = "never"
            summary = operation["summary"].replace("|", "\\|")
            rows.append(f"| {method.upper()} | `{path}` | {summary} | {query} | {token} |")
    return "\n".join(rows)


def worker_routes() -> str:
    from streams import Settings, create_app
    from streams.web.openapi import worker_openapi

    settings = Settings.from_env({"TABLE_STORE": "memory"})
    app = create_app(settings, agents=[], tables=[])
    return _openapi_table(worker_openapi(settings.console_mode),
                          _registered(app.web.web_app.router))


def producer_routes() -> str:
    from streams import Publisher, PublisherConfig, Settings
    from streams.web.openapi import producer_openapi
    from streams.web.producer_service import create_producer_web_app

    async def build() -> set[tuple[str, str]]:
        publisher = Publisher(Settings.from_env({}), PublisherConfig())
        return _registered(create_producer_web_app(publisher).router)

    return _openapi_table(producer_openapi(), asyncio.run(build()))


GENERATORS = {
    "settings": settings_table,
    "http-worker": worker_routes,
    "http-producer": producer_routes,
}
