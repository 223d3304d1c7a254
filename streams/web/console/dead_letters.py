"""Dead letters screen: the `<topic>.dlq` topics, their letters with the error headers, and
replaying selected letters (or all) to the original topic.

    GET  /api/dlq                        source topics with a dead-letter topic and counts
    GET  /api/dlq/{topic}?limit=&max_scan=&positions=   letters of `<topic>.dlq`, oldest first
    POST /api/dlq/{topic}/replay         {"offsets": [[partition, offset], ...]} or {"all": true}
                                         -> replayed, skipped, rejected (letters with bad
                                         headers, with the reason); 409 while one runs

Replay is `streams.processing.dlq_replay.replay_dead_letters`, the same function the CLI uses.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.processing.dead_letters import DLQ_SUFFIX, dead_letter_topic_name
from streams.processing.dlq_replay import ReplayBusyError, replay_dead_letters
from streams.web.console._http import ApiError, api, console_of, int_param, json_body
from streams.web.console.messages import parse_positions
from streams.web.console.records import scan
from streams.web.console.topics import list_topics, offset_bounds, partition_metadata

MAX_LIMIT = 500
MAX_SCAN = 100_000
MAX_REPLAY_SELECTION = 10_000
ERROR_HEADERS = ("x-error-type", "x-error-message", "x-original-topic",
                 "x-original-partition", "x-original-offset", "x-attempts", "x-failed-at")


def letter_view(message: dict[str, Any]) -> dict[str, Any]:
    """A dead letter: the record plus its error headers pulled out."""
    headers = message["headers"]
    error = {name.removeprefix("x-").replace("-", "_"): headers.get(name)
             for name in ERROR_HEADERS}
    return {**message, "error": error,
            "original_headers": {k: v for k, v in headers.items() if k not in ERROR_HEADERS}}


@api
async def get_dead_letter_topics(request: web.Request) -> web.Response:
    topics = await list_topics(console_of(request), internal=False)
    names = {t["name"] for t in topics}
    return web.json_response({"topics": [
        {"source_topic": t["name"].removesuffix(DLQ_SUFFIX), "dlq_topic": t["name"],
         "dead_letters": t["messages"], "partitions": t["partitions"],
         "source_exists": t["name"].removesuffix(DLQ_SUFFIX) in names}
        for t in topics if t["name"].endswith(DLQ_SUFFIX)]})


@api
async def get_dead_letters(request: web.Request) -> web.Response:
    console = console_of(request)
    source = request.match_info["topic"]
    dlq = dead_letter_topic_name(source)
    partitions = [p["partition"] for p in await partition_metadata(console, dlq)]
    limit = int_param(request, "limit", 100, low=1, high=MAX_LIMIT) or 100
    max_scan = int_param(request, "max_scan", 10_000, low=1, high=MAX_SCAN) or 1
    bounds = await offset_bounds(console, dlq, partitions)
    starts = ({p: lo for p, (lo, _) in bounds.items()} if not request.query.get("positions")
              else parse_positions(request.query["positions"], partitions))
    ranges = {p: (min(max(starts.get(p, hi), lo), hi), hi) for p, (lo, hi) in bounds.items()}
    result = await scan(console, dlq, ranges, limit=limit, max_scan=max_scan)
    body = result.as_json()
    body["messages"] = [letter_view(m) for m in body["messages"]]
    return web.json_response({"source_topic": source, "dlq_topic": dlq, **body})


def _selection(body: dict[str, Any], partitions: list[int]) -> list[tuple[int, int]] | None:
    if body.get("all") is True:
        return None
    offsets = body.get("offsets")
    if not isinstance(offsets, list) or not offsets:
        raise ApiError(400, 'send {"offsets": [[partition, offset], ...]} to replay selected '
                            'dead letters or {"all": true} for all of them')
    if len(offsets) > MAX_REPLAY_SELECTION:
        raise ApiError(400, f"{len(offsets)} letters selected; at most "
                            f"{MAX_REPLAY_SELECTION} per request")
    selection = []
    for item in offsets:
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in item)):
            raise ApiError(400, f"offsets: {item!r} is not a [partition, offset] pair")
        partition, offset = item
        if partition not in partitions:
            raise ApiError(400, f"offsets: partition {partition} does not exist")
        if offset < 0:
            raise ApiError(400, f"offsets: offset {offset} is negative")
        selection.append((partition, offset))
    return selection


@api
async def replay(request: web.Request) -> web.Response:
    """Replay selected letters; 409 while another replay of the topic runs (CLI or UI)."""
    console = console_of(request)
    source = request.match_info["topic"]
    partitions = [p["partition"] for p in
                  await partition_metadata(console, dead_letter_topic_name(source))]
    await partition_metadata(console, source)  # the original topic must exist too
    selection = _selection(await json_body(request), partitions)
    try:
        result = await replay_dead_letters(console.settings, source, offsets=selection)
    except ReplayBusyError as exc:
        raise ApiError(409, str(exc)) from None
    return web.json_response({"source_topic": source, "replayed": result.replayed,
                              "skipped": result.skipped, "restamped": result.restamped,
                              "rejected": result.rejected,
                              "selected": None if selection is None else len(selection)})


def add_routes(router: web.UrlDispatcher, *, writes: bool) -> None:
    router.add_get("/api/dlq", get_dead_letter_topics)
    router.add_get("/api/dlq/{topic}", get_dead_letters)
    if writes:
        router.add_post("/api/dlq/{topic}/replay", replay)
