"""The producer HTTP service: Confluent REST Proxy v2 style produce API over `Publisher`.

    POST /topics/{topic}   {"records": [{"key": .., "value": .., "headers": {..}}]}
                           -> {"offsets": [{"partition": p, "offset": o}, ...]} in record order
    GET  /topics           -> {"topics": [{"name": .., "partitions": n}, ...]}
    GET  /metrics          Prometheus text format
    GET  /health           {"status": "ok"} while the process runs
    GET  /                 a page with a form that produces records through this API

Content types `application/json` and `application/vnd.kafka.json.v2+json` are accepted. Keys
and values follow `Publisher`'s rules: a JSON string is written as its UTF-8 text (so a key
"user-42" partitions as the Java client's String key would), anything else as JSON. A record
that could not be written carries `error_code` (1: not retriable, 2: retriable, as in the
REST Proxy) and `error` in place of its offset; bad input gets a 4xx with
`{"error_code": .., "message": ..}` saying what is wrong, and then nothing is published.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams import strict_json
from streams.errors import BrokerUnreachableError, PublishError, SettingsError, UnknownTopicError
from streams.gc_tuning import freeze_startup_objects, set_collection_thresholds
from streams.kafka.publisher import (
    Delivery,
    Outgoing,
    Publisher,
    PublisherConfig,
    topic_name_problem,
)
from streams.settings import Settings
from streams.web.access import AccessPolicy, access_middleware
from streams.web.openapi import producer_openapi, serve_openapi

__all__ = ["create_producer_web_app", "run_producer_service"]

log = logging.getLogger(__name__)

JSON_TYPES = frozenset({"application/json", "application/vnd.kafka.json.v2+json"})
_RECORD_FIELDS = frozenset({"key", "value", "headers", "partition"})
_PUBLISHER = web.AppKey("publisher", Publisher)
_ADMIN = web.AppKey("admin", AIOKafkaAdminClient)
_BODY_LIMIT = web.AppKey("body_limit", int)


class BadRequest(Exception):
    """Input the service refuses; becomes a JSON error response."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def _error(status: int, error_code: int, message: str) -> web.Response:
    return web.json_response({"error_code": error_code, "message": message}, status=status)


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return _error(exc.status, exc.error_code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.status * 100 + 1, exc.reason)


def _parse_records(body: Any) -> list[Outgoing]:
    if not isinstance(body, dict):
        raise BadRequest(422, 42201, 'the body must be a JSON object: {"records": [...]}')
    if "records" not in body:
        raise BadRequest(422, 42201, 'the body has no "records" field')
    records = body["records"]
    if not isinstance(records, list) or not records:
        raise BadRequest(422, 42201, '"records" must be a non-empty array of record objects')
    parsed = []
    for index, record in enumerate(records):
        where = f"records[{index}]"
        if not isinstance(record, dict):
            raise BadRequest(422, 42201, f"{where} must be an object with key/value/headers")
        unknown = set(record) - _RECORD_FIELDS
        if unknown:
            raise BadRequest(422, 42201, f"{where} has unknown fields {sorted(unknown)}; "
                             "allowed: key, value, headers, partition")
        if record.get("key") is None and record.get("value") is None:
            raise BadRequest(422, 42201, f"{where} needs a key or a value")
        headers = record.get("headers")
        if headers is not None and not (
            isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
        ):
            raise BadRequest(422, 42201, f"{where}.headers must be an object of string values")
        partition = record.get("partition")
        if partition is not None and (
            not isinstance(partition, int) or isinstance(partition, bool) or partition < 0
        ):
            raise BadRequest(422, 42201, f"{where}.partition must be a non-negative integer")
        parsed.append(Outgoing(record.get("value"), record.get("key"), headers, partition))
    return parsed


async def _produce(request: web.Request) -> web.Response:
    topic = request.match_info["topic"]
    problem = topic_name_problem(topic)
    if problem is not None:
        raise BadRequest(400, 40002, f"invalid topic name: {problem}")
    if request.content_type not in JSON_TYPES:
        raise BadRequest(415, 41501, f"content type {request.content_type!r} is not supported; "
                         f"send one of {sorted(JSON_TYPES)}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[_BODY_LIMIT]
        raise BadRequest(413, 41301, f"the body is larger than {limit} bytes "
                         "(PRODUCER_MAX_BODY_BYTES); send fewer records per request") from None
    try:
        body = strict_json.loads(raw)
    except ValueError as exc:
        raise BadRequest(400, 40001, f"the body is not valid JSON: {exc}") from None
    records = _parse_records(body)
    most = request.app[_PUBLISHER].config.max_records_per_request
    if len(records) > most:
        raise BadRequest(422, 42203, f"{len(records)} records in one request; at most {most} "
                         "(PRODUCER_MAX_RECORDS): send them in several requests")
    partitions = await _partition_count(request.app[_PUBLISHER], topic)
    for index, record in enumerate(records):
        if record.partition is not None and record.partition >= partitions:
            raise BadRequest(422, 42202, f"records[{index}].partition {record.partition} does "
                             f"not exist: topic {topic!r} has {partitions} partitions")
    try:
        results = await request.app[_PUBLISHER].publish_many(topic, records)
    except PublishError as exc:
        raise BadRequest(503, 50301, str(exc)) from None
    return web.json_response({
        "key_schema_id": None,
        "value_schema_id": None,
        "offsets": [_offset(result) for result in results],
    })


async def _partition_count(publisher: Publisher, topic: str) -> int:
    try:
        return len(await publisher.partitions_for(topic))
    except UnknownTopicError as exc:
        raise BadRequest(404, 40401, exc.cause) from None
    except PublishError as exc:
        if exc.retriable:  # no broker answered within the publish deadline
            raise BadRequest(503, 50301, str(exc)) from None
        raise BadRequest(400, 40002, str(exc)) from None


def _offset(result: Delivery | PublishError) -> dict[str, Any]:
    if isinstance(result, Delivery):
        return {"partition": result.partition, "offset": result.offset,
                "error_code": None, "error": None}
    return {"partition": None, "offset": None,
            "error_code": 2 if result.retriable else 1, "error": str(result)}


async def _topics(request: web.Request) -> web.Response:
    admin = request.app[_ADMIN]
    names = sorted(name for name in await admin.list_topics() if not name.startswith("__"))
    described = await admin.describe_topics(names) if names else []
    counts = {topic["topic"]: len(topic["partitions"]) for topic in described}
    return web.json_response(
        {"topics": [{"name": name, "partitions": counts.get(name, 0)} for name in names]})


async def _metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(request.app[_PUBLISHER].registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


_PRODUCE_PAGE = Path(__file__).resolve().parent / "console" / "static" / "produce.html"


async def _produce_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(_PRODUCE_PAGE)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def access_policy(settings: Settings) -> AccessPolicy:
    """Token, allowed hosts and content types of the service bound to PRODUCER_HOST."""
    return AccessPolicy.from_settings(settings, settings.producer_host, json_types=JSON_TYPES,
                                      open_paths=("/", "/health"))


def _refusal(status: int, message: str) -> web.Response:
    return _error(status, status * 100 + 1, message)


def create_producer_web_app(
    publisher: Publisher, *, max_body_bytes: int | None = None,
    access: AccessPolicy | None = None,
) -> web.Application:
    """The service's aiohttp app around a started `publisher` (the caller closes it).

    `access` defaults to what the settings of `publisher` ask for (see `access_policy`).
    """
    limit = max_body_bytes or publisher.config.max_body_bytes
    policy = access or access_policy(publisher.settings)
    app = web.Application(client_max_size=limit,
                          middlewares=[access_middleware(policy, _refusal), _json_errors])
    app[_PUBLISHER] = publisher
    app[_BODY_LIMIT] = limit
    app[_ADMIN] = AIOKafkaAdminClient(**publisher.admin_options())

    async def start_admin(app: web.Application) -> None:
        await app[_ADMIN].start()

    async def close_admin(app: web.Application) -> None:
        await app[_ADMIN].close()

    app.on_startup.append(start_admin)
    app.on_cleanup.append(close_admin)
    app.router.add_post("/topics/{topic}", _produce)
    app.router.add_get("/topics", _topics)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/health", _health)
    app.router.add_get("/", _produce_page)
    serve_openapi(app.router, producer_openapi())
    return app


async def serve(settings: Settings, config: PublisherConfig,
                stop: asyncio.Event | None = None) -> int:
    """Run the service until `stop` is set (or SIGINT/SIGTERM); return the exit code."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    publisher = Publisher(settings, config, client_id="streams-producer-service")
    try:
        await publisher.start()
    except BrokerUnreachableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    runner = web.AppRunner(create_producer_web_app(publisher))
    try:
        await runner.setup()
        site = web.TCPSite(runner, settings.producer_host, settings.producer_port)
        try:
            await site.start()
        except OSError as exc:
            print(f"error: cannot listen on {settings.producer_host}:{settings.producer_port}: "
                  f"{exc.strerror or exc} (set PRODUCER_HOST/PRODUCER_PORT)", file=sys.stderr)
            return 1
        print(f"producer service on http://{settings.producer_host}:{settings.producer_port}",
              file=sys.stderr, flush=True)
        await stop.wait()
        log.info("shutting down: delivering queued records")
    finally:
        await runner.cleanup()
        failures = await publisher.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 1 if failures else 0


def run_producer_service(settings: Settings) -> int:
    """Serve the producer API on PRODUCER_HOST:PRODUCER_PORT until SIGINT/SIGTERM.

    Blocking; returns the process exit code (2 for a bad setting, 1 when Kafka or the port
    is unavailable, 0 after a clean shutdown).
    """
    try:
        config = PublisherConfig.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # as in a worker (streams.gc_tuning): a request's records, several objects each, are
    # held until acknowledged, and Python's thresholds rescanned them (a quarter of the
    # service's rate in the producer benchmark's HTTP part)
    set_collection_thresholds(settings.gc_young_threshold)
    if settings.gc_young_threshold:
        freeze_startup_objects()
    return asyncio.run(serve(settings, config))

