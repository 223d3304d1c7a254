"""Tables screen: browse a table's keys with a prefix and pagination, across workers.

    GET /api/tables/{table}?prefix=&after=&limit=      keys in order, with their values

Key lookups stay with `streams.web.table_views` (`/api/tables/{table}/{key}`, routed to the owner).
Each worker keeps only its active partitions, so a browse asks the other members of the
app's consumer group for their part (`scope=local`) and merges the pages. Each worker reads
its page with `streams.web.table_views.scan_page` (RocksDB seeks, not a full scan); a windowed
table's entries carry their window, and the cursor names key and window.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from streams.web.console._http import ApiError, Console, api, console_of, int_param
from streams.web.console.groups import describe_group
from streams.web.table_views import cursor_of, scan_page

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
PEER_TIMEOUT_S = 5.0


def _sort_key(entry: dict[str, Any]) -> tuple[str, float]:
    window = entry.get("window") or {}
    return str(entry["key"]), float(window.get("start_epoch") or 0)


def _first(entries: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    return sorted(entries, key=_sort_key)[:limit]


async def _peer_pages(console: Console, path: str, params: dict[str, str],
                      ) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Entries from the other workers of the group, the peers asked, the ones that failed."""
    members = (await describe_group(console, console.group_id))["members"]
    own = console.settings.web_url.rstrip("/")
    peers = sorted({m["url"].rstrip("/") for m in members if m["url"]} - {own})
    if not peers:
        return [], [], []
    entries: list[dict[str, Any]] = []
    failed: list[str] = []
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def fetch(peer: str) -> None:
            try:
                async with session.get(peer + path, params=params,
                                       headers=console.peer_headers(peer)) as response:
                    body = await response.json()
                    entries.extend(body["entries"])
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                failed.append(peer)

        await asyncio.gather(*(fetch(peer) for peer in peers))
    return entries, peers, sorted(failed)


@api
async def browse_table(request: web.Request) -> web.Response:
    console = console_of(request)
    name = request.match_info["table"]
    tables = {t.name: t for t in console.app.platform_tables}
    if name not in tables:
        known = ", ".join(sorted(tables)) or "none"
        raise ApiError(404, f"no table named {name!r} (tables: {known})")
    prefix = request.query.get("prefix", "")
    after = request.query.get("after") or None
    limit = int_param(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT) or DEFAULT_LIMIT
    scope = request.query.get("scope", "all")
    if scope not in ("all", "local"):
        raise ApiError(400, f"scope={scope!r}: use all or local")
    entries, scanned = scan_page(tables[name], prefix, after, limit)
    peers: list[str] = []
    failed: list[str] = []
    if scope == "all":
        params = {"prefix": prefix, "limit": str(limit), "scope": "local"}
        if after is not None:
            params["after"] = after
        more, peers, failed = await _peer_pages(console, request.path, params)
        entries = _first(entries + more, limit)
    next_after = cursor_of(entries[-1]) if len(entries) == limit else None
    return web.json_response({
        "table": name, "prefix": prefix, "after": after, "limit": limit,
        "entries": entries, "next_after": next_after,
        "scanned_local": scanned, "workers_asked": peers,
        "workers_unreachable": failed,
    })


def add_routes(router: web.UrlDispatcher, *, writes: bool) -> None:
    router.add_get("/api/tables/{table}", browse_table)
