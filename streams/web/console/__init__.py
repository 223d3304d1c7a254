"""The dashboard: a JSON API under `/api/` and the pages at `/`, on the worker's web server.

`register_console(app)` mounts both on a worker app built by `create_app`. Each screen has
its own module and API: `topics` (cluster, topics, partitions), `groups` (consumer groups,
lag, offset reset), `messages` (browse, search, export, produce), `dead_letters` (list and
replay), `live` (metrics over Server-Sent Events); the tables screen reads `/api/tables`
(`streams.web.table_routes`). `filters` is the safe filter language of message search.
The pages in `static/` are plain HTML, CSS and JavaScript: nothing to build.

`CONSOLE_MODE=read-only` leaves the write routes (create topics, add partitions, produce,
reset offsets, replay dead letters) unmounted; `off` mounts nothing. Who may call what is
decided in front of every route by `streams.web.access`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from streams.web.access import AccessPolicy
from streams.web.console import dead_letters, groups, live, messages, topics
from streams.web.console._http import CONSOLE, Console

__all__ = ["STATIC_DIR", "register_console"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def _index(request: web.Request) -> web.FileResponse:
    """The dashboard's page."""
    return web.FileResponse(STATIC_DIR / "index.html",
                            headers={"Cache-Control": "no-cache"})


def register_console(app: Any, policy: AccessPolicy) -> None:
    """Mount the dashboard API and pages on the worker `app` (a `PlatformApp`).

    The API reuses the app's settings for its Kafka clients; they connect on first use
    and close with the web server. `policy` is what the page tells the person about the
    token (the checks themselves run in the access middleware).
    """
    settings = app.platform_settings
    if settings.console_mode == "off":
        return
    console = Console(app, settings, policy)
    writes = settings.console_mode == "read-write"

    async def describe(request: web.Request) -> web.Response:
        return web.json_response({"mode": settings.console_mode,
                                  "token": policy.token_needed_for})
    web_app: web.Application = app.web.web_app
    web_app[CONSOLE] = console
    router = web_app.router
    # The page at "/" is added before Faust's own index blueprint, so it wins.
    router.add_get("/", _index)
    router.add_static("/static/", STATIC_DIR, append_version=False)
    router.add_get("/api/console", describe)
    for screen in (topics, messages, groups, dead_letters, live):
        screen.add_routes(router, writes=writes)

    async def stop(_: web.Application) -> None:
        await console.close()

    web_app.on_shutdown.append(stop)
