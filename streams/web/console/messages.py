"""Messages screen: browse and search a topic with bounded scans, export, produce.

    GET  /api/topics/{topic}/messages    browse/search; query parameters below
    POST /api/topics/{topic}/messages    {"key", "value", "headers", "partition"} -> offset

Query parameters of the GET:

- `partition`: one partition (default: all)
- `from`: `newest` (default), `oldest`, `offset` (with `offset=N`) or `timestamp`
  (with `timestamp=` epoch milliseconds or an ISO 8601 time)
- `positions`: `p:offset,...` continues a scan where `next_positions` said it stopped
- `key` (exact), `text` (in the value, case-insensitive), `header` (`name` or `name=value`),
  `filter` (see `streams.web.console.filters`)
- `limit` (default 50, at most 500), `max_scan` (default 10000, at most 100000)
- `format=jsonl` answers JSON lines (one record per line) for download
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from aiokafka import TopicPartition

from streams.errors import PublishError
from streams.web.console._http import (
    INT64_MAX,
    ApiError,
    Console,
    api,
    console_of,
    int_param,
    json_body,
)
from streams.web.console.filters import FilterError, Predicate, compile_filter
from streams.web.console.records import Order, scan
from streams.web.console.topics import offset_bounds, partition_metadata

MAX_LIMIT = 500
MAX_SCAN = 100_000
DEFAULT_LIMIT = 50
DEFAULT_SCAN = 10_000
STARTS = ("newest", "oldest", "offset", "timestamp")
_MILLIS = re.compile(r"-?[0-9]{1,19}")


def parse_timestamp(raw: str) -> int:
    """Epoch milliseconds from digits or an ISO 8601 time (UTC unless it says otherwise)."""
    raw = raw.strip()
    shown = raw[:60]
    if _MILLIS.fullmatch(raw):
        value = int(raw)
    else:
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.now().astimezone().tzinfo)
            value = int(moment.timestamp() * 1000)
        except (ValueError, OverflowError, OSError):
            raise ApiError(400, f"timestamp={shown!r} is neither epoch milliseconds nor an "
                                "ISO 8601 time") from None
    if value < 0:
        raise ApiError(400, f"timestamp={shown!r} is before 1970")
    if value > INT64_MAX:
        raise ApiError(400, f"timestamp={shown!r} is past the largest Kafka timestamp")
    return value


def parse_positions(raw: str, partitions: list[int]) -> dict[int, int]:
    positions = {}
    for part in raw.split(","):
        pieces = part.split(":")
        if len(pieces) != 2 or not all(_MILLIS.fullmatch(x) for x in pieces):
            raise ApiError(400, f"positions={raw[:60]!r}: write partition:offset,...")
        partition, offset = (int(x) for x in pieces)
        if partition not in partitions:
            raise ApiError(400, f"positions: partition {partition} does not exist")
        if offset < 0:
            raise ApiError(400, f"positions: offset {offset} is negative")
        positions[partition] = offset
    return positions


def build_predicate(query: Mapping[str, str]) -> Predicate | None:
    """One predicate from the key, text, header and filter parameters (all must hold)."""
    tests: list[Predicate] = []
    if query.get("key"):
        key = query["key"]
        tests.append(lambda r: r["key"] == key)
    if query.get("text"):
        needle = query["text"].lower()
        tests.append(lambda r: needle in _as_text(r["value"]).lower())
    if query.get("header"):
        name, has_value, wanted = query["header"].partition("=")
        if has_value:
            tests.append(lambda r: r["headers"].get(name) == wanted)
        else:
            tests.append(lambda r: name in r["headers"])
    if query.get("filter"):
        try:
            tests.append(compile_filter(query["filter"]))
        except FilterError as exc:
            raise ApiError(400, f"filter: {exc}") from None
    if not tests:
        return None
    return lambda record: all(test(record) for test in tests)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def _start_offsets(console: Console, topic: str, request: web.Request,
                         bounds: dict[int, tuple[int, int]], max_scan: int,
                         ) -> tuple[dict[int, int], Order]:
    start = request.query.get("from", "newest")
    if start not in STARTS:
        raise ApiError(400, f"from={start!r}: use one of {', '.join(STARTS)}")
    if request.query.get("positions"):
        return parse_positions(request.query["positions"], list(bounds)), "oldest_first"
    if start == "oldest":
        return {p: lo for p, (lo, _) in bounds.items()}, "oldest_first"
    if start == "newest":
        window = math.ceil(max_scan / max(1, len(bounds)))
        return {p: max(lo, hi - window) for p, (lo, hi) in bounds.items()}, "newest_first"
    if start == "offset":
        offset = int_param(request, "offset", None, low=0)
        if offset is None:
            raise ApiError(400, "from=offset needs offset=N")
        for p, (_lo, hi) in bounds.items():
            if offset > hi:
                raise ApiError(400, f"offset {offset} is past the end of partition {p} "
                                    f"(end offset {hi})")
        return {p: max(lo, offset) for p, (lo, _) in bounds.items()}, "oldest_first"
    raw = request.query.get("timestamp", "")
    if not raw:
        raise ApiError(400, "from=timestamp needs timestamp= (epoch ms or ISO 8601)")
    when = parse_timestamp(raw)
    consumer = await console.offsets()
    found = await consumer.offsets_for_times({TopicPartition(topic, p): when for p in bounds})
    return ({tp.partition: (hit.offset if hit is not None else bounds[tp.partition][1])
             for tp, hit in found.items()}, "oldest_first")


@api
async def get_messages(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    topic = request.match_info["topic"]
    metadata = await partition_metadata(console, topic)
    partitions = [p["partition"] for p in metadata]
    only = int_param(request, "partition", None, low=0)
    if only is not None:
        if only not in partitions:
            raise ApiError(400, f"partition {only} does not exist: topic {topic!r} has "
                                f"{len(partitions)} partitions")
        partitions = [only]
    limit = int_param(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT) or DEFAULT_LIMIT
    max_scan = int_param(request, "max_scan", DEFAULT_SCAN, low=1, high=MAX_SCAN) or 1
    export = request.query.get("format", "json")
    if export not in ("json", "jsonl"):
        raise ApiError(400, f"format={export!r}: use json or jsonl")
    match = build_predicate(request.query)
    bounds = await offset_bounds(console, topic, partitions)
    starts, order = await _start_offsets(console, topic, request, bounds, max_scan)
    ranges = {p: (min(max(starts.get(p, hi), lo), hi), hi) for p, (lo, hi) in bounds.items()}
    result = await scan(console, topic, ranges, limit=limit, max_scan=max_scan,
                        match=match, order=order)
    if export == "jsonl":
        lines = "".join(json.dumps(m, separators=(",", ":")) + "\n" for m in result.messages)
        return web.Response(text=lines, content_type="application/x-ndjson", headers={
            "Content-Disposition": f'attachment; filename="{topic}-messages.jsonl"',
            "X-Scanned": str(result.scanned), "X-Total": str(result.total)})
    return web.json_response({"topic": topic, "partitions": partitions,
                              "order": order, **result.as_json()})


@api
async def produce_message(request: web.Request) -> web.Response:
    """Publish one record with the platform's `Publisher` (acks=all, idempotent)."""
    console = console_of(request)
    topic = request.match_info["topic"]
    partitions = [p["partition"] for p in await partition_metadata(console, topic)]
    body = await json_body(request)
    unknown = set(body) - {"key", "value", "headers", "partition"}
    if unknown:
        raise ApiError(400, f"unknown fields {sorted(unknown)}; allowed: key, value, "
                            "headers, partition")
    if body.get("key") is None and body.get("value") is None:
        raise ApiError(400, "a record needs a key or a value")
    headers = body.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ApiError(400, '"headers" must be an object of string values')
    partition = body.get("partition")
    if partition is not None and (not isinstance(partition, int) or isinstance(partition, bool)
                                  or partition not in partitions):
        raise ApiError(400, f"partition {partition!r} does not exist: topic {topic!r} has "
                            f"{len(partitions)} partitions")
    publisher = await console.publisher()
    try:
        result = await publisher.publish(topic, body.get("value"), body.get("key"), headers,
                                         partition=partition)
    except PublishError as exc:
        raise ApiError(503, str(exc)) from None
    return web.json_response({"topic": topic, "partition": result.partition,
                              "offset": result.offset}, status=201)


def add_routes(router: web.UrlDispatcher, *, writes: bool) -> None:
    router.add_get("/api/topics/{topic}/messages", get_messages)
    if writes:
        router.add_post("/api/topics/{topic}/messages", produce_message)
