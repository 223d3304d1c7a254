"""Every route of `/api/tables` on the worker's web server (port 8881).

    GET /api/tables                      the tables: types, partitions, keys per local
                                         partition, window spec of windowed tables
    GET /api/tables/{table}?prefix=&after=&limit=
                                         keys in order with their values, from every
                                         worker of the group (`scope=local`: this one's)
    GET /api/tables/{table}/{key}        a key's value, answered by the worker owning the
                                         key's partition under the table's key partitioner
                                         (the app's router, streams.web.routing, forwards)
        windowed tables: ?window=current            the window containing now
                         ?from=...&to=...           windows overlapping [from, to]
                                                    (ISO-8601 or epoch seconds)
                         no parameters              every stored window of the key

Each worker keeps only its active partitions, so a browse asks the other members of the
app's consumer group for their part (`scope=local`) and merges the pages; what a worker
answers is computed by `streams.web.table_views`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web
from faust.exceptions import SameNode
from faust.utils import json as faust_json
from faust.web.exceptions import ServiceUnavailable

from streams.errors import TableError
from streams.state.windows import WindowedTable
from streams.web.console._http import ApiError, api, console_of, int_param
from streams.web.console.groups import describe_group
from streams.web.table_views import (
    AnyTable,
    cursor_of,
    describe,
    parse_key,
    scan_page,
    to_json,
    window_lookup,
)

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
PEER_TIMEOUT_S = 5.0
TABLES = web.AppKey("streams_tables", dict)


def register_table_routes(app: Any) -> None:
    """Serve `/api/tables*` for the platform tables of `app` (a `PlatformApp`)."""
    web_app: web.Application = app.web.web_app
    web_app[TABLES] = {table.name: table for table in app.platform_tables}
    web_app[_FAUST_APP] = app
    router = web_app.router
    router.add_get("/api/tables", list_tables)
    router.add_get("/api/tables/{table}", browse_table)
    router.add_get("/api/tables/{table}/{key}", lookup)


_FAUST_APP = web.AppKey("streams_tables_app", object)


def _json(data: Any, status: int = 200) -> web.Response:
    # Faust's encoder: table values may hold datetimes, decimals and UUIDs. It returns
    # bytes when orjson is installed (a deployment may bring it, as quixstreams does).
    body = faust_json.dumps(data)
    return web.Response(body=body.encode() if isinstance(body, str) else body,
                        status=status, content_type="application/json")


def _table(request: web.Request) -> AnyTable:
    tables: dict[str, AnyTable] = request.app[TABLES]
    name = request.match_info["table"]
    if name not in tables:
        known = ", ".join(sorted(tables)) or "none"
        raise ApiError(404, f"no table named {name!r} (tables: {known})")
    return tables[name]


@api
async def list_tables(request: web.Request) -> web.Response:
    return _json({"tables": [describe(t) for t in request.app[TABLES].values()]})


@api
async def lookup(request: web.Request) -> web.StreamResponse:
    """A key's value, from the worker that owns the key's partition."""
    table = _table(request)
    key = request.match_info["key"]
    app: Any = request.app[_FAUST_APP]
    try:
        forwarded: web.StreamResponse = await app.router.route_req(
            table.name, key, app.web, request)
        return forwarded
    except SameNode:
        pass
    except ServiceUnavailable:
        raise ApiError(503, f"no worker owns the partition of key {key!r} of table "
                            f"{table.name!r} yet (rebalancing?)") from None
    try:
        if isinstance(table, WindowedTable):
            return _json(window_lookup(table, key, dict(request.query)))
        typed_key = parse_key(table, key)
    except (ValueError, TableError) as exc:
        raise ApiError(400, str(exc)) from None
    except LookupError as exc:
        raise ApiError(404, exc.args[0]) from None
    value = table.get(typed_key)
    if value is None:
        raise ApiError(404, f"key {key!r} not found in table {table.name!r}")
    return _json({"table": table.name, "key": typed_key, "value": to_json(value)})


@api
async def browse_table(request: web.Request) -> web.Response:
    """A page of keys in order, merged from every worker of the group."""
    table = _table(request)
    prefix = request.query.get("prefix", "")
    after = request.query.get("after") or None
    limit = int_param(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT) or DEFAULT_LIMIT
    scope = request.query.get("scope", "all")
    if scope not in ("all", "local"):
        raise ApiError(400, f"scope={scope!r}: use all or local")
    entries, scanned = scan_page(table, prefix, after, limit)
    peers: list[str] = []
    failed: list[str] = []
    if scope == "all":
        params = {"prefix": prefix, "limit": str(limit), "scope": "local"}
        if after is not None:
            params["after"] = after
        more, peers, failed = await _peer_pages(request, params)
        entries = sorted(entries + more, key=_sort_key)[:limit]
    next_after = cursor_of(entries[-1]) if len(entries) == limit else None
    return _json({
        "table": table.name, "prefix": prefix, "after": after, "limit": limit,
        "entries": entries, "next_after": next_after,
        "scanned_local": scanned, "workers_asked": peers,
        "workers_unreachable": failed,
    })


def _sort_key(entry: dict[str, Any]) -> tuple[str, float]:
    window = entry.get("window") or {}
    return str(entry["key"]), float(window.get("start_epoch") or 0)


async def _peer_pages(request: web.Request, params: dict[str, str],
                      ) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Entries from the other workers of the group, the peers asked, the ones that failed."""
    console = console_of(request)
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
                async with session.get(peer + request.path, params=params,
                                       headers=console.peer_headers(peer)) as response:
                    body = await response.json()
                    entries.extend(body["entries"])
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                failed.append(peer)

        await asyncio.gather(*(fetch(peer) for peer in peers))
    return entries, peers, sorted(failed)
